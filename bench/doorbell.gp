# The plot of bench/doorbell (bench/doorbell-plot runs it):
#   gnuplot -e "dat='OUT.dat'; out='OUT.png'; plots='OUT.gpplots'" doorbell.gp
# dat holds three blocks (bench/doorbell-report): loopback latency, wire
# latency, message rate; each row a ring path, each group of three columns
# the median and the min-max spread of one test (NaN: no finite figure).
# The report writes the panels into plots, with only the series that have a
# point: gnuplot stops at one without ("No valid points in histogram").
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key below
set xtics rotate by -25
set yrange [0:*]
load plots
