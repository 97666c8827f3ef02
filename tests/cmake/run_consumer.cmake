# Packaging test driver, run by ctest as
#   cmake -DMODE=<fetch_content|add_subdirectory|find_package> -DADMIT_SOURCE_DIR=...
#         -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -DCMAKE_GENERATOR=...
#         -DCMAKE_CXX_COMPILER=... [-DCMAKE_MAKE_PROGRAM=...] [-DBUILD_TYPE=...]
#         -P run_consumer.cmake
#
# find_package:      configure admit alone (tests off), build, install it into
#                    WORK_DIR/install, then configure, build and run the consumer
#                    with CMAKE_PREFIX_PATH pointing there.
# fetch_content,
# add_subdirectory:  configure, build and run the consumer, which pulls admit in
#                    from ADMIT_SOURCE_DIR itself.
#
# Any failing step fails the test and prints that step's command and output.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS MODE ADMIT_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_DIR
                     CMAKE_GENERATOR CMAKE_CXX_COMPILER)
  if("${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

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

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(consumer_args "-DADMIT_SOURCE_DIR=${ADMIT_SOURCE_DIR}")

if(MODE STREQUAL "find_package")
  set(prefix "${WORK_DIR}/install")
  run_step("configure admit"
    "${CMAKE_COMMAND}" -S "${ADMIT_SOURCE_DIR}" -B "${WORK_DIR}/admit-build"
    ${configure_args}
    -DADMIT_BUILD_TESTS=OFF -DADMIT_BUILD_EXAMPLES=OFF -DADMIT_BUILD_BENCHMARKS=OFF
    -DADMIT_INSTALL=ON "-DCMAKE_INSTALL_PREFIX=${prefix}")
  run_step("build admit" "${CMAKE_COMMAND}" --build "${WORK_DIR}/admit-build" ${config_args})
  run_step("install admit"
    "${CMAKE_COMMAND}" --install "${WORK_DIR}/admit-build" ${config_args})

  # The installed package must stand on its own: headers, config, version file, and
  # no path back into the source or build tree.
  foreach(file IN ITEMS include/admit/admit.hpp share/cmake/admit/admitConfig.cmake
                        share/cmake/admit/admitConfigVersion.cmake
                        share/cmake/admit/admitTargets.cmake)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "[${MODE}] install is missing ${file}")
    endif()
  endforeach()
  file(GLOB package_files "${prefix}/share/cmake/admit/*.cmake")
  foreach(file IN LISTS package_files)
    file(READ "${file}" text)
    foreach(tree IN ITEMS "${ADMIT_SOURCE_DIR}/include" "${WORK_DIR}/admit-build")
      string(FIND "${text}" "${tree}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "[${MODE}] installed ${file} refers to ${tree}")
      endif()
    endforeach()
  endforeach()

  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${prefix}" "-DADMIT_EXPECTED_PREFIX=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
elseif(NOT MODE MATCHES "^(fetch_content|add_subdirectory)$")
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

run_step("configure consumer"
  "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/consumer-build"
  ${configure_args} ${consumer_args})
run_step("build consumer" "${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer-build" ${config_args})

# Consumers put their executable in <build>/bin whatever the generator.
set(exe "${WORK_DIR}/consumer-build/bin/admit_consumer")
if(NOT EXISTS "${exe}" AND EXISTS "${exe}.exe")
  set(exe "${exe}.exe")
endif()
run_step("run consumer" "${exe}")
message(STATUS "[${MODE}] ok")
