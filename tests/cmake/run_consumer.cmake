# Packaging test driver, run by ctest (tests/CMakeLists.txt) as
#   cmake -DMODE=<mode> -DWORK_DIR=... -DCMAKE_GENERATOR=... -DCMAKE_CXX_COMPILER=...
#         [-DCMAKE_MAKE_PROGRAM=...] [-DBUILD_TYPE=...] <mode's variables>
#         -P run_consumer.cmake
#
# install          configure admit alone (tests, examples, benchmarks off) with one
#                  CMAKE_INSTALL_PREFIX, build it, and install it into another,
#                  PREFIX (cmake --install --prefix), as a relocated install; check
#                  that the files are there and that no installed package file
#                  names the source tree, the build tree or the configured prefix.
#                  Needs ADMIT_SOURCE_DIR, PREFIX.
# consumer         configure, build and run the project CONSUMER_SOURCE_DIR: every
#                  executable it puts in <build>/bin. With PREFIX it finds admit
#                  there (CMAKE_PREFIX_PATH, ADMIT_EXPECTED_PREFIX); ADMIT_SOURCE_DIR
#                  is passed on for FetchContent / add_subdirectory.
# configure_error  configure CONSUMER_SOURCE_DIR, which must fail with output that
#                  contains each of EXPECT (whitespace runs compare as one space,
#                  since CMake rewraps messages).
# pkg_config       PKG_CONFIG_EXECUTABLE --cflags admit with PKG_CONFIG_PATH at the
#                  install in PREFIX must name its include directory; compile
#                  CONSUMER_SOURCE_DIR/main.cpp with just those flags, run it, and
#                  compare what it prints with pkg-config --modversion.
# export           CONSUMER_SOURCE_DIR/library: a project that gets admit with
#                  FetchContent and installs and exports a library linking it.
#                  Configure, build, install it into WORK_DIR/install (which must
#                  then hold nothing of admit's), install admit's component there,
#                  then build and run CONSUMER_SOURCE_DIR/downstream, which finds
#                  the library with find_package.
#
# Lists (DEFINES: NAME=VALUE for the consumer's configure; EXPECT) separate their
# items with "|". Any failing step fails the test and prints its command and output.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS MODE WORK_DIR CMAKE_GENERATOR CMAKE_CXX_COMPILER)
  if("${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

# require(<var>...)
function(require)
  foreach(var IN LISTS ARGN)
    if("${${var}}" STREQUAL "")
      message(FATAL_ERROR "run_consumer.cmake: MODE=${MODE} needs -D${var}=...")
    endif()
  endforeach()
endfunction()

# run_step(<description> <command>...)
function(run_step description)
  message(STATUS "[${MODE}] ${description}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "[${MODE}] ${description} failed (${result})\n"
      "command: ${command}\n${output}")
  endif()
  set(step_output "${output}" PARENT_SCOPE)
endfunction()

# Same toolchain and generator as the build running this test.
set(configure_args -G "${CMAKE_GENERATOR}" "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
foreach(var IN ITEMS CMAKE_GENERATOR_PLATFORM CMAKE_GENERATOR_TOOLSET)
  if(NOT "${${var}}" STREQUAL "")
    string(REPLACE "CMAKE_GENERATOR_" "-" flag "${var}")
    string(REPLACE "PLATFORM" "A" flag "${flag}")
    string(REPLACE "TOOLSET" "T" flag "${flag}")
    list(APPEND configure_args "${flag}" "${${var}}")
  endif()
endforeach()
if(NOT "${CMAKE_MAKE_PROGRAM}" STREQUAL "")
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
endif()
set(config_args "")
if(NOT "${BUILD_TYPE}" STREQUAL "")
  list(APPEND configure_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
  set(config_args --config "${BUILD_TYPE}")
endif()

# What every consumer configure gets: admit's source tree, the install to test
# (and no other admit: no package registry), and DEFINES.
set(consumer_args "")
if(NOT "${ADMIT_SOURCE_DIR}" STREQUAL "")
  list(APPEND consumer_args "-DADMIT_SOURCE_DIR=${ADMIT_SOURCE_DIR}")
endif()
if(NOT "${PREFIX}" STREQUAL "")
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${PREFIX}" "-DADMIT_EXPECTED_PREFIX=${PREFIX}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
endif()
string(REPLACE "|" ";" defines "${DEFINES}")
foreach(define IN LISTS defines)
  list(APPEND consumer_args "-D${define}")
endforeach()

# run_executables(<build dir>): consumers put their executables in <build>/bin
# (<build>/bin/<config> with a multi-config generator); run each.
function(run_executables build_dir)
  file(GLOB executables LIST_DIRECTORIES false "${build_dir}/bin/*" "${build_dir}/bin/${BUILD_TYPE}/*")
  list(REMOVE_DUPLICATES executables)
  if(NOT executables)
    message(FATAL_ERROR "[${MODE}] ${build_dir}/bin holds no executable")
  endif()
  foreach(exe IN LISTS executables)
    get_filename_component(name "${exe}" NAME)
    run_step("run ${name}" "${exe}")
  endforeach()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "install")
  require(ADMIT_SOURCE_DIR PREFIX)
  file(REMOVE_RECURSE "${PREFIX}")
  set(configured_prefix "${WORK_DIR}/configured-prefix")
  run_step("configure admit"
    "${CMAKE_COMMAND}" -S "${ADMIT_SOURCE_DIR}" -B "${WORK_DIR}/admit-build"
    ${configure_args}
    -DADMIT_BUILD_TESTS=OFF -DADMIT_BUILD_EXAMPLES=OFF -DADMIT_BUILD_BENCHMARKS=OFF
    "-DCMAKE_INSTALL_PREFIX=${configured_prefix}")
  run_step("build admit" "${CMAKE_COMMAND}" --build "${WORK_DIR}/admit-build" ${config_args})
  run_step("install admit" "${CMAKE_COMMAND}" --install "${WORK_DIR}/admit-build"
    ${config_args} --prefix "${PREFIX}")

  # The installed package must stand on its own: headers, config, version file,
  # pkg-config file, and no path back into the trees it was made from.
  foreach(file IN ITEMS include/admit/admit.hpp include/admit/version.hpp
                        include/admit/asio.hpp
                        share/cmake/admit/admitConfig.cmake
                        share/cmake/admit/admitConfigVersion.cmake
                        share/cmake/admit/admitTargets.cmake
                        share/cmake/admit/admitFindAsio.cmake
                        share/pkgconfig/admit.pc)
    if(NOT EXISTS "${PREFIX}/${file}")
      message(FATAL_ERROR "[${MODE}] install is missing ${file}")
    endif()
  endforeach()
  file(GLOB package_files "${PREFIX}/share/cmake/admit/*.cmake" "${PREFIX}/share/pkgconfig/*.pc")
  foreach(file IN LISTS package_files)
    file(READ "${file}" text)
    foreach(tree IN ITEMS "${ADMIT_SOURCE_DIR}/include" "${WORK_DIR}/admit-build"
                          "${configured_prefix}")
      string(FIND "${text}" "${tree}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "[${MODE}] installed ${file} refers to ${tree}")
      endif()
    endforeach()
  endforeach()

elseif(MODE STREQUAL "consumer")
  require(CONSUMER_SOURCE_DIR)
  run_step("configure consumer"
    "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/consumer-build"
    ${configure_args} ${consumer_args})
  run_step("build consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer-build"
    ${config_args})
  run_executables("${WORK_DIR}/consumer-build")

elseif(MODE STREQUAL "configure_error")
  require(CONSUMER_SOURCE_DIR EXPECT)
  message(STATUS "[${MODE}] configure consumer (must fail)")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}"
      -B "${WORK_DIR}/consumer-build" ${configure_args} ${consumer_args}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(result EQUAL 0)
    message(FATAL_ERROR "[${MODE}] configuring ${CONSUMER_SOURCE_DIR} succeeded; it must fail\n"
      "${output}")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat_output "${output}")
  string(REPLACE "|" ";" expected "${EXPECT}")
  foreach(text IN LISTS expected)
    string(FIND "${flat_output}" "${text}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "[${MODE}] the configure output does not say \"${text}\":\n${output}")
    endif()
  endforeach()

elseif(MODE STREQUAL "pkg_config")
  require(CONSUMER_SOURCE_DIR PREFIX PKG_CONFIG_EXECUTABLE)
  # Only our install: no system .pc files that could shadow it.
  set(pkg_config "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${PREFIX}/share/pkgconfig"
    "PKG_CONFIG_LIBDIR=${PREFIX}/share/pkgconfig" "${PKG_CONFIG_EXECUTABLE}")
  run_step("pkg-config --cflags admit" ${pkg_config} --cflags admit)
  string(STRIP "${step_output}" cflags)
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  file(REAL_PATH "${PREFIX}/include" expected_include)
  set(found_include "")
  foreach(flag IN LISTS cflags)
    if(flag MATCHES "^-I(.+)$")
      file(REAL_PATH "${CMAKE_MATCH_1}" dir)
      if(dir STREQUAL expected_include)
        set(found_include "${dir}")
      endif()
    endif()
  endforeach()
  if(NOT found_include)
    message(FATAL_ERROR "[${MODE}] pkg-config --cflags admit gave '${cflags}', "
      "without -I${expected_include}")
  endif()
  run_step("pkg-config --modversion admit" ${pkg_config} --modversion admit)
  string(STRIP "${step_output}" modversion)

  # A build without CMake: the compiler, the language level and pkg-config's flags.
  set(exe "${WORK_DIR}/admit_pkg_config_consumer")
  run_step("compile with pkg-config's flags"
    "${CMAKE_CXX_COMPILER}" -std=c++20 ${cflags} "${CONSUMER_SOURCE_DIR}/main.cpp" -o "${exe}")
  run_step("run consumer" "${exe}")
  string(STRIP "${step_output}" header_version)
  if(NOT header_version STREQUAL modversion)
    message(FATAL_ERROR "[${MODE}] admit.pc says version ${modversion}, "
      "<admit/version.hpp> says ${header_version}")
  endif()

elseif(MODE STREQUAL "export")
  require(CONSUMER_SOURCE_DIR ADMIT_SOURCE_DIR)
  set(prefix "${WORK_DIR}/install")
  run_step("configure library"
    "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}/library" -B "${WORK_DIR}/library-build"
    ${configure_args} ${consumer_args})
  run_step("build library" "${CMAKE_COMMAND}" --build "${WORK_DIR}/library-build" ${config_args})
  run_step("install library" "${CMAKE_COMMAND}" --install "${WORK_DIR}/library-build"
    ${config_args} --prefix "${prefix}")
  # A plain install of a project that fetched admit installs nothing of admit's...
  foreach(file IN ITEMS include/admit share/cmake/admit share/pkgconfig/admit.pc)
    if(EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "[${MODE}] a plain install of the consumer installed admit's ${file}")
    endif()
  endforeach()
  # ...which the consumer installs beside its own package when it wants to.
  run_step("install admit's component" "${CMAKE_COMMAND}" --install "${WORK_DIR}/library-build"
    ${config_args} --prefix "${prefix}" --component admit)
  foreach(file IN ITEMS include/admit/admit.hpp share/cmake/admit/admitConfig.cmake)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "[${MODE}] cmake --install --component admit did not install ${file}")
    endif()
  endforeach()

  run_step("configure downstream"
    "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}/downstream" -B "${WORK_DIR}/downstream-build"
    ${configure_args} "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  run_step("build downstream" "${CMAKE_COMMAND}" --build "${WORK_DIR}/downstream-build"
    ${config_args})
  run_executables("${WORK_DIR}/downstream-build")

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()
message(STATUS "[${MODE}] ok")
