# The package of the library in ../CMakeLists.txt: it needs admit, with fmt for
# admit::fmt, which its targets link.
include(CMakeFindDependencyMacro)
find_dependency(admit 0.1 COMPONENTS fmt)
include("${CMAKE_CURRENT_LIST_DIR}/uploadsTargets.cmake")
