# Included by CTest after the test cases are listed (see test_cases.cmake).
# Cases that time a server under a load they make themselves run alone: with
# `ctest -j` on two cores (four ASan cases at once) the other cases, not the
# server, would set the latency they measure. The high COST starts them
# first, while nothing else runs, instead of waiting for the longest
# running cases to end.
foreach(name IN ITEMS
    integration.admin_and_reload/slowloris_flood_cannot_deny_health_probes)
  set_tests_properties("${name}" PROPERTIES RUN_SERIAL TRUE COST 1000000)
endforeach()
