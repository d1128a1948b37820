# Included by CTest (the TEST_INCLUDE_FILES of tests/) before it runs
# anything: asks one Boost.Test executable for its test cases and adds a CTest
# entry per enabled case, `PREFIX/suite/case`, running only that case. The
# integration cases mostly wait on sockets and child processes, so one entry
# each lets `ctest -j` run them side by side instead of one file at a time.
#
# Listing at test time (not at configure or build time) means the entries are
# always the cases the executable holds: a new case needs no CMake change and
# cannot be left out. The list is cached next to the executable and made again
# when the executable (or this script) is newer.

function(importwatch_add_test_cases executable prefix timeout)
  if(NOT EXISTS "${executable}")
    # Not built: one entry that fails, saying so, rather than none.
    add_test("${prefix}" "${executable}")
    return()
  endif()
  set(cache "${executable}_cases.cmake")
  if(NOT EXISTS "${cache}" OR "${executable}" IS_NEWER_THAN "${cache}"
     OR "${CMAKE_CURRENT_FUNCTION_LIST_FILE}" IS_NEWER_THAN "${cache}")
    # Boost 1.81 prints the tree to stderr, one unit a line, indented 4
    # spaces per level, `*` after the enabled ones.
    execute_process(COMMAND "${executable}" --list_content
                    OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      # The whole executable as one entry: it fails the way the listing did.
      message(WARNING "${executable} --list_content exited ${rc}:\n${out}")
      add_test("${prefix}" "${executable}" --log_level=message)
      set_tests_properties("${prefix}" PROPERTIES TIMEOUT ${timeout})
      return()
    endif()
    string(REGEX REPLACE "\n$" "" out "${out}")
    string(REPLACE "\n" ";" lines "${out}")
    set(depths)
    set(names)
    foreach(line IN LISTS lines)
      string(REGEX MATCH "^ +" indent "${line}")
      string(LENGTH "${indent}" spaces)
      math(EXPR depth "${spaces} / 4")
      string(STRIP "${line}" name)
      if(name STREQUAL "")
        continue()
      endif()
      list(APPEND depths ${depth})
      list(APPEND names "${name}")
    endforeach()
    list(LENGTH names count)
    set(path)
    set(content "")
    set(cases 0)
    foreach(i RANGE ${count})
      if(i EQUAL count)
        break()
      endif()
      list(GET depths ${i} depth)
      list(GET names ${i} name)
      string(REGEX REPLACE "\\*$" "" bare "${name}")
      list(SUBLIST path 0 ${depth} path)
      list(APPEND path "${bare}")
      # A case is a unit with nothing nested under it.
      math(EXPR next "${i} + 1")
      set(leaf TRUE)
      if(next LESS count)
        list(GET depths ${next} next_depth)
        if(next_depth GREATER depth)
          set(leaf FALSE)
        endif()
      endif()
      if(leaf AND name MATCHES "\\*$")
        list(JOIN path "/" id)
        string(APPEND content
          "add_test([==[${prefix}/${id}]==] [==[${executable}]==] [==[--run_test=${id}]==] --log_level=message)\n"
          "set_tests_properties([==[${prefix}/${id}]==] PROPERTIES TIMEOUT ${timeout})\n")
        math(EXPR cases "${cases} + 1")
      endif()
    endforeach()
    if(cases EQUAL 0)
      message(WARNING "${executable} --list_content names no enabled test case:\n${out}")
      string(APPEND content "add_test([==[${prefix}]==] [==[${executable}]==] --log_level=message)\n")
    endif()
    file(WRITE "${cache}" "${content}")
  endif()
  include("${cache}")
endfunction()
