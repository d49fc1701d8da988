# Writes OUT: the short hash of SRC's checked-out commit ("unknown" outside a git checkout), with
# "-dirty" when tracked files differ from it, as STARINFER_GIT_COMMIT. Run at every build; the
# file is rewritten only when the value changes.
cmake_minimum_required(VERSION 3.24)
set(hash unknown)
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SRC} rev-parse --short HEAD
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
  if(rc EQUAL 0)
    set(hash ${out})
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SRC} diff --quiet HEAD --
                    RESULT_VARIABLE dirty ERROR_QUIET)
    if(NOT dirty EQUAL 0)
      set(hash ${hash}-dirty)
    endif()
  endif()
endif()
file(CONFIGURE OUTPUT ${OUT} CONTENT "#define STARINFER_GIT_COMMIT \"@hash@\"\n" @ONLY)
