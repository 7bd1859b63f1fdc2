# Runs CMD (a ;-list) and passes only when it exits with status 1 and its stderr
# matches ERROR: a clear host error, not a crash (a signal or sanitizer abort
# gives another status).
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "1")
  message(FATAL_ERROR "expected exit status 1, got '${rc}'\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT err MATCHES "${ERROR}")
  message(FATAL_ERROR "stderr does not match '${ERROR}':\n${err}")
endif()
message(STATUS "failed as expected: ${err}")
