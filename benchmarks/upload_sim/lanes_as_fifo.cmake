# ctest benchmarks/upload_sim_lanes_as_fifo: Fairness::lanes with
# max_head_wait 0 must admit exactly as FIFO does (config.hpp), and with the
# default window must not, or the trace never had a head to pass and the
# first comparison proved nothing. Compares --csv output with the fairness
# column, which alone differs by design, made equal.
#   cmake -DSIM=<admit_upload_sim> "-DARGS=<arg;...>" -P lanes_as_fifo.cmake
function(run out)
  execute_process(COMMAND "${SIM}" --csv ${ARGS} ${ARGN}
    OUTPUT_VARIABLE csv ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(JOIN " " flags ${ARGN})
    message(FATAL_ERROR "admit_upload_sim ${flags} failed (${rc}): ${err}")
  endif()
  string(REPLACE ",lanes," ",fifo," csv "${csv}")
  set(${out} "${csv}" PARENT_SCOPE)
endfunction()

run(fifo --fairness fifo)
run(no_window --fairness lanes --max-head-wait 0)
run(window --fairness lanes)
if(NOT fifo STREQUAL no_window)
  message(FATAL_ERROR "lanes with --max-head-wait 0 differs from FIFO:\n${fifo}\n---\n${no_window}")
endif()
if(fifo STREQUAL window)
  message(FATAL_ERROR "lanes with its default window equals FIFO: the trace tests nothing")
endif()
message(STATUS "lanes without a window admits as FIFO; with one, it does not")
