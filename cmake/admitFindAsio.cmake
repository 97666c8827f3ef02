# Finds standalone Asio (not Boost.Asio) for admit::asio_standalone. Included by
# admit's CMakeLists.txt and, when the asio_standalone component is requested, by
# the installed admitConfig.cmake, so that both find it the same way.
#
# admit::asio_standalone links the target asio::asio, the name vcpkg's and
# Conan's asio packages give it. Upstream Asio ships no CMake package, so:
#
#   1. a target asio::asio that already exists is used as it is (the consumer's
#      own, or one its package manager made with find_package(asio));
#   2. else find_package(asio CONFIG QUIET), for a package manager's asio that the
#      consumer has not looked for yet;
#   3. else asio.hpp is looked for on the include path (Debian: libasio-dev),
#      or in ADMIT_ASIO_INCLUDE_DIR when set (a checkout: <asio>/asio/include),
#      and an imported target asio::asio is made from it, local to the directory
#      that included this file, with the version checked from asio/version.hpp.
#
# CMAKE_DISABLE_FIND_PACKAGE_asio=ON turns off steps 2 and 3, as it would for any
# package.
include_guard(DIRECTORY)

# Per-operation cancellation, which <admit/asio.hpp> uses, arrived in Asio 1.19.0
# (the Asio of Boost 1.77). The header checks it too, with ASIO_VERSION.
set(ADMIT_ASIO_MIN_VERSION 1.19.0)

# admit_find_standalone_asio(<result-var>)
#   Makes sure that a target asio::asio exists, as described above. Sets
#   <result-var> to an empty string on success, else to a sentence saying what is
#   missing and how to get it.
function(admit_find_standalone_asio result_var)
  set(${result_var} "" PARENT_SCOPE)
  if(TARGET asio::asio)
    return()
  endif()
  string(CONCAT how "install it (Debian: libasio-dev; vcpkg, Conan: asio) or set "
    "ADMIT_ASIO_INCLUDE_DIR to the directory that holds asio.hpp")
  if(CMAKE_DISABLE_FIND_PACKAGE_asio)
    set(${result_var} "standalone Asio was not looked for (CMAKE_DISABLE_FIND_PACKAGE_asio is ON)"
        PARENT_SCOPE)
    return()
  endif()

  # No version here: vcpkg's asio package has no version file.
  find_package(asio CONFIG QUIET)
  if(TARGET asio::asio)
    return()
  endif()

  find_path(ADMIT_ASIO_INCLUDE_DIR asio.hpp
    DOC "Directory that holds standalone Asio's asio.hpp, for admit::asio_standalone")
  mark_as_advanced(ADMIT_ASIO_INCLUDE_DIR)
  if(NOT ADMIT_ASIO_INCLUDE_DIR OR NOT EXISTS "${ADMIT_ASIO_INCLUDE_DIR}/asio/version.hpp")
    set(${result_var} "standalone Asio ${ADMIT_ASIO_MIN_VERSION} or later was not found: ${how}"
        PARENT_SCOPE)
    return()
  endif()

  # asio/version.hpp: "#define ASIO_VERSION 102201 // 1.22.1"
  file(STRINGS "${ADMIT_ASIO_INCLUDE_DIR}/asio/version.hpp" line
    REGEX "^#define ASIO_VERSION [0-9]+")
  string(REGEX MATCH "[0-9]+" number "${line}")
  if(number STREQUAL "")
    set(${result_var} "cannot read ASIO_VERSION from ${ADMIT_ASIO_INCLUDE_DIR}/asio/version.hpp"
        PARENT_SCOPE)
    return()
  endif()
  math(EXPR major "${number} / 100000")
  math(EXPR minor "${number} / 100 % 1000")
  math(EXPR patch "${number} % 100")
  set(version "${major}.${minor}.${patch}")
  if(version VERSION_LESS ADMIT_ASIO_MIN_VERSION)
    string(CONCAT message "standalone Asio ${version} in ${ADMIT_ASIO_INCLUDE_DIR} is too old: "
      "per-operation cancellation needs ${ADMIT_ASIO_MIN_VERSION} or later; ${how}")
    set(${result_var} "${message}" PARENT_SCOPE)
    return()
  endif()

  # Asio runs its own threads (and uses pthread directly on POSIX).
  find_package(Threads QUIET)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${ADMIT_ASIO_INCLUDE_DIR}")
  if(TARGET Threads::Threads)
    set_target_properties(asio::asio PROPERTIES INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
endfunction()
