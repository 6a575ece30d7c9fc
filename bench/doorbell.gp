# The plot of bench/doorbell: gnuplot -e "dat='...'; out='...'" doorbell.gp
# dat holds three blocks (bench/doorbell-report): loopback latency, wire
# latency, message rate; each row a ring path, each group of three columns
# the median and the min-max spread of one test.
set terminal pngcairo size 1500,520 font ",10"
set output out
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key below
set xtics rotate by -25
set yrange [0:*]
set multiplot layout 1,3 title "rxe doorbell ring paths (qemu TCG, 2 vCPUs): median, bars min-max over repetitions"

set title "two processes, one guest: latency"
set ylabel "t\\_typical [us]"
plot dat index 0 using 2:3:4:xtic(1) title "ib\\_write\\_lat 2B", \
     '' index 0 using 5:6:7 title "ib\\_write\\_lat 64B", \
     '' index 0 using 8:9:10 title "ib\\_send\\_lat 2B", \
     '' index 0 using 11:12:13 title "ib\\_send\\_lat 64B"

set title "across the link, two guests: latency"
plot dat index 1 using 2:3:4:xtic(1) title "ib\\_write\\_lat 2B", \
     '' index 1 using 5:6:7 title "ib\\_write\\_lat 64B"

set title "ib\\_write\\_bw -s 64: message rate"
set ylabel "thousand messages/s"
plot dat index 2 using 2:3:4:xtic(1) title "one guest", \
     '' index 2 using 5:6:7 title "across the link"
unset multiplot
