# tests/polyglot.cmake: the polyglot clients (clients/python, clients/node)
# against the real server binary, included from tests/CMakeLists.txt. Each
# test starts and stops its own servers on 127.0.0.1:0 (the failover tests:
# on free ports picked first, since a standby does not listen) and cleans
# up its processes and temporary files. Needs what clients/setup.sh installs
# (python3-grpcio, python3-protobuf, grpc_python_plugin, node and
# clients/node/node_modules); the Python tests run against the package
# installed into a venv of their own (clients/python/run_tests.sh, one
# install per run), from outside the source tree.
#
#   ctest -L polyglot --output-on-failure
set(_polyglot_clients ${CMAKE_CURRENT_LIST_DIR}/../clients)
set(_polyglot_make_certs ${CMAKE_CURRENT_LIST_DIR}/support/make_certs.sh)

# Python (unittest): bad input as status codes, stop/timeouts/reconnect.
add_test(NAME polyglot_python_errors
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_errors)
# Python: the seed's tutorial with multiprocessing workers (fork and spawn)
# and examples/tutorial.py.
add_test(NAME polyglot_python_tutorial
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_tutorial)
# C++ test_worker, Python and Node workers on one throttle at once.
add_test(NAME polyglot_mixed_fleet
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker>
    test_mixed_fleet)
# The Acquire stream under await_fuel (one stream per handle, demand and
# withdrawal, await_fuel_n, stop / close / delete, a restart, fork),
# catch_up in the controller's config, and update(): a partial configure.
add_test(NAME polyglot_python_acquire
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker>
    test_acquire test_config)
# The adaptive ceiling: report() moves the rate, create()/update() take
# the adaptive settings (Python; Node: test/adaptive.test.js below).
add_test(NAME polyglot_python_adaptive
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_adaptive)
add_test(NAME polyglot_node_adaptive
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/adaptive.test.js)
add_test(NAME polyglot_python_degrade
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_degrade)
# Node (node --test): the same for the Node client.
add_test(NAME polyglot_node_errors
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/errors.test.js)
add_test(NAME polyglot_node_tutorial
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/tutorial.test.js)
# The Acquire stream under awaitFuel: one stream per handle, demand and
# withdrawal, the counted variant, stop / close / delete, a restart,
# asking ahead where fuel is unlimited.
add_test(NAME polyglot_node_acquire
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/acquire.test.js test/ask_ahead.test.js)
# Graceful degradation: local share and fail fast through a SIGKILL.
add_test(NAME polyglot_node_degrade
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/degrade.test.js)
# update(): a partial configure (update_mask) keeps the settings not given;
# configure() still replaces the config whole; the warm-up settings
# (warmUp, warmUpFrom) given, listed and refused. (Python: in test_config.)
add_test(NAME polyglot_node_config
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/config.test.js)
# Per-worker statistics: real worker processes of different worker_ids
# (Python and C++; Node) get fuel, the controller's mean()/latest() with
# the workers list what each got and the fairness index.
add_test(NAME polyglot_python_worker_stats
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker>
    test_worker_stats)
add_test(NAME polyglot_node_worker_stats
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/worker_stats.test.js)
# watch(): a live view (WatchThrottle): the first snapshot at once, the
# interval, a stop marked changed, a delete ending it with NOT_FOUND, close
# or cancel freeing the stream (under --max_streams=1), a server restart.
add_test(NAME polyglot_python_watch
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_watch)
add_test(NAME polyglot_node_watch
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/watch.test.js)
# Failover (also needs etcd, found on PATH or at /usr/bin/etcd, or
# $THROTTLE_ETCD): a real etcd and two high-available servers of one
# cluster; Python and Node workers and controllers on the multi-address
# target ride through a kill -9 of the leader and a SIGTERM hand-over;
# throttlectl lists through the same target with either server leading.
add_test(NAME polyglot_python_failover
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_failover)
set_tests_properties(polyglot_python_failover PROPERTIES
  ENVIRONMENT "THROTTLECTL=$<TARGET_FILE:throttlectl>")
add_test(NAME polyglot_node_failover
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/failover.test.js)
# TLS, mTLS and bearer tokens (also needs openssl, for make_certs.sh): a
# server with client certificates required and one without, both with a
# policy and a token file; a worker certificate gets fuel and may not stop
# (PERMISSION_DENIED), an admin token creates and deletes, a wrong token is
# UNAUTHENTICATED, plaintext and failed handshakes are UNAVAILABLE, a token
# without TLS is refused when the client is made; the environment
# variables THROTTLE_TLS_CA, ... and their precedence; a multi-address
# target (a closed port, then the server) with server_name / serverName
# (THROTTLE_TLS_SERVER_NAME), and without it: Python fails "Peer name ... is
# not in peer certificate", Node checks the first address's host.
add_test(NAME polyglot_python_tls
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_tls)
add_test(NAME polyglot_node_tls
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/tls.test.js)
set_tests_properties(polyglot_python_tls polyglot_node_tls PROPERTIES
  ENVIRONMENT "THROTTLE_MAKE_CERTS=${_polyglot_make_certs}")

# Installs as a user does (docs/clients.md), tests/clients/: a venv with
# `pip install --no-build-isolation` of clients/python (offline), then from
# outside the tree `import throttle_client` gets fuel from a real server;
# the tarball of `npm pack` in clients/node installed offline into a fresh
# project, whose require('throttle-client') gets fuel; `tsc --noEmit` on a
# .ts file using the package's index.d.ts (skipped without typescript).
set(_polyglot_install_tests ${CMAKE_CURRENT_LIST_DIR}/clients)
add_test(NAME polyglot_python_install
  COMMAND bash ${_polyglot_install_tests}/python_install_test.sh
    $<TARGET_FILE:throttle_server>)
add_test(NAME polyglot_node_pack_install
  COMMAND bash ${_polyglot_install_tests}/node_pack_install_test.sh
    $<TARGET_FILE:throttle_server>)
add_test(NAME polyglot_node_types
  COMMAND bash ${_polyglot_install_tests}/node_pack_install_test.sh --types)

# Deadline-aware admission (issue 14.1): a fail_if_late wait ends TOO_LATE
# at once with the expected wait when the next grant is an hour away; the
# retry-after of has_fuel / hasFuel.
add_test(NAME polyglot_python_admission
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_admission)
add_test(NAME polyglot_node_admission
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/admission.test.js)

# Priorities: two workers of different classes on one throttle, the higher
# gets the fuel while both wait; a bad class is INVALID_ARGUMENT.
add_test(NAME polyglot_python_priority
  COMMAND bash ${_polyglot_clients}/python/run_tests.sh
    $<TARGET_FILE:throttle_server> $<TARGET_FILE:test_worker> test_priority)
add_test(NAME polyglot_node_priority
  COMMAND bash ${_polyglot_clients}/node/run_tests.sh
    $<TARGET_FILE:throttle_server> test/priority.test.js)

set_tests_properties(
  polyglot_python_admission polyglot_node_admission
  polyglot_python_errors polyglot_python_tutorial polyglot_mixed_fleet
  polyglot_python_acquire polyglot_python_degrade polyglot_node_degrade
  polyglot_node_errors polyglot_node_tutorial polyglot_node_acquire
  polyglot_node_config polyglot_python_worker_stats polyglot_node_worker_stats
  polyglot_python_watch polyglot_node_watch
  polyglot_python_failover polyglot_node_failover
  polyglot_python_tls polyglot_node_tls
  polyglot_python_priority polyglot_node_priority
  polyglot_python_adaptive polyglot_node_adaptive
  polyglot_python_install polyglot_node_pack_install polyglot_node_types
  PROPERTIES TIMEOUT 600 LABELS polyglot)
set_tests_properties(polyglot_python_failover polyglot_node_failover
  PROPERTIES LABELS "polyglot;ha")
set_tests_properties(polyglot_python_tls polyglot_node_tls
  PROPERTIES LABELS "polyglot;tls")
unset(_polyglot_clients)
unset(_polyglot_make_certs)
unset(_polyglot_install_tests)
