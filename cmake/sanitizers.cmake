# Sanitizer and fuzzing builds (included from the top-level CMakeLists.txt).
#
#   -DTHROTTLE_SANITIZE=address,undefined   ASan + UBSan (clang or gcc)
#   -DTHROTTLE_SANITIZE=thread              TSan
#   -DTHROTTLE_FUZZ=ON                      libFuzzer targets in tests/fuzz
#                                           (clang only; implies
#                                           address,undefined)
#
# The flags go on the project's own targets only (never on Debian's
# libraries, which stay as they are), one target at a time through
# target_compile_options / target_link_options:
# throttle_apply_sanitizers() walks every target defined under the source
# tree once all of them exist, so that a target added later in any
# CMakeLists.txt is covered without touching it. Static libraries carry the
# link flags in their interface, so whatever links them (including a project
# using the installed package, see tests/integration/install_consumer) links the
# sanitizer runtime too.
set(THROTTLE_SANITIZE "" CACHE STRING
  "Sanitizers for the project's own targets: empty, address,undefined or thread")
option(THROTTLE_FUZZ "Build the libFuzzer targets in tests/fuzz (clang only)" OFF)

if(THROTTLE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "THROTTLE_FUZZ=ON needs clang (libFuzzer); got "
      "${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(THROTTLE_SANITIZE STREQUAL "")
    set(THROTTLE_SANITIZE "address,undefined")
  elseif(NOT THROTTLE_SANITIZE STREQUAL "address,undefined")
    message(FATAL_ERROR "THROTTLE_FUZZ=ON goes with THROTTLE_SANITIZE="
      "address,undefined, got ${THROTTLE_SANITIZE}")
  endif()
endif()

set(_throttle_sanitize_compile "")
set(_throttle_sanitize_link "")
if(NOT THROTTLE_SANITIZE STREQUAL "")
  set(_throttle_sanitize_compile
    -fsanitize=${THROTTLE_SANITIZE} -fno-omit-frame-pointer)
  # -O1 (as the sanitizers' documentation advises) and line tables only,
  # after the build type's -O2 -g: reports keep file and line, and a
  # sanitizer build compiles about a fifth faster (CI builds three).
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    list(APPEND _throttle_sanitize_compile -O1 -gline-tables-only)
  else()
    list(APPEND _throttle_sanitize_compile -O1 -g1)
  endif()
  if(THROTTLE_SANITIZE MATCHES "undefined")
    # A UBSan report aborts the test instead of printing and going on.
    list(APPEND _throttle_sanitize_compile -fno-sanitize-recover=undefined)
  endif()
  set(_throttle_sanitize_link -fsanitize=${THROTTLE_SANITIZE})
  if(THROTTLE_FUZZ)
    # Coverage feedback for libFuzzer in the code under test; only the fuzz
    # targets themselves link libFuzzer's main (tests/fuzz/CMakeLists.txt).
    list(APPEND _throttle_sanitize_compile -fsanitize=fuzzer-no-link)
  endif()
  message(STATUS "throttle: -fsanitize=${THROTTLE_SANITIZE} on the project's "
    "targets (fuzzing: ${THROTTLE_FUZZ})")
endif()

# Collects the targets defined in `dir` and below into `out`.
function(_throttle_targets_below dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    _throttle_targets_below(${sub} sub_targets)
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Puts the sanitizer flags on every compiled target of the project. Call it
# at the end of the top-level CMakeLists.txt.
function(throttle_apply_sanitizers)
  if(THROTTLE_SANITIZE STREQUAL "")
    return()
  endif()
  _throttle_targets_below(${PROJECT_SOURCE_DIR} targets)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(type STREQUAL "EXECUTABLE" OR type STREQUAL "SHARED_LIBRARY"
       OR type STREQUAL "MODULE_LIBRARY")
      target_compile_options(${target} PRIVATE ${_throttle_sanitize_compile})
      target_link_options(${target} PRIVATE ${_throttle_sanitize_link})
    elseif(type STREQUAL "STATIC_LIBRARY" OR type STREQUAL "OBJECT_LIBRARY")
      target_compile_options(${target} PRIVATE ${_throttle_sanitize_compile})
      target_link_options(${target} INTERFACE ${_throttle_sanitize_link})
    endif()
  endforeach()
endfunction()
