# Included into rdma-core's configure by scripts/build-rdma-core
# (CMAKE_PROJECT_INCLUDE). pyverbs, the Cython bindings that only the tests
# load, is compiled with -O1 and without debug info: its generated C is
# most of rdma-core's compile time, -O1 -g0 halves it (libibverbs_enums.c:
# 10 s against 23 s with -O2 -g), and the tests run at Python's pace
# anyway. Everything else keeps rdma-core's RelWithDebInfo flags, as
# the benchmarks compare our provider with Debian's -O2 build.

function(rdmap_pyverbs_flags dir)
	get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
	foreach(t IN LISTS targets)
		get_property(type TARGET "${t}" PROPERTY TYPE)
		if(type MATCHES "MODULE_LIBRARY|SHARED_LIBRARY|STATIC_LIBRARY|OBJECT_LIBRARY")
			# after CMAKE_C_FLAGS_<CONFIG> on the command line: these win
			target_compile_options("${t}" PRIVATE -O1 -g0)
		endif()
	endforeach()
	get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
	foreach(d IN LISTS subdirs)
		rdmap_pyverbs_flags("${d}")
	endforeach()
endfunction()

# pyverbs/ and what it adds, if rdma-core added it (not with NO_PYVERBS)
function(rdmap_pyverbs_flags_all)
	get_property(subdirs DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY SUBDIRECTORIES)
	list(FILTER subdirs INCLUDE REGEX "/pyverbs$")
	foreach(d IN LISTS subdirs)
		rdmap_pyverbs_flags("${d}")
	endforeach()
endfunction()

# at the end of the top-level CMakeLists, once pyverbs' targets exist
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL rdmap_pyverbs_flags_all)
