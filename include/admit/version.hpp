// admit/version.hpp - admit's version, as macros usable in #if.
//
//   ADMIT_VERSION_MAJOR, ADMIT_VERSION_MINOR, ADMIT_VERSION_PATCH
//   ADMIT_VERSION   major * 10000 + minor * 100 + patch (0.1.0 is 100), for
//                   comparisons: #if ADMIT_VERSION >= 200 (0.2.0 or later)
//
// This is the one place the version is written: the top-level CMakeLists.txt
// reads it from here for project(), so the CMake package version, the
// pkg-config file and these macros cannot disagree. Semantic versioning; minor
// and patch stay below 100 so that ADMIT_VERSION is unambiguous (CMake checks).
#pragma once

#define ADMIT_VERSION_MAJOR 0
#define ADMIT_VERSION_MINOR 1
#define ADMIT_VERSION_PATCH 0

#define ADMIT_VERSION \
  (ADMIT_VERSION_MAJOR * 10000 + ADMIT_VERSION_MINOR * 100 + ADMIT_VERSION_PATCH)
