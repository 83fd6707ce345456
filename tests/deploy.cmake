# Offline checks of deploy/ (included from tests/CMakeLists.txt): the
# Kubernetes manifests and compose file against the API schemas and the
# project's rules (the high-available pair's and the security layout's
# included), and both Dockerfiles (the server's, deploy/etcd's) through two
# linters. Both use Node and npm packages locked in deploy/validate
# (installed on first use). deploy_demo_pki runs the deployment's security
# files with the built server and throttlectl (no containers, about a
# second): deploy/policy.conf through --check_policy, the certificates of
# deploy/make-demo-certs.sh, and each role of the policy over mTLS.
# The image build and run check, deploy/verify-image.sh (one server, then
# the pair on a real etcd with a failover), is no ctest test: it needs root
# and a Docker engine and takes minutes; .ci/run calls it.
add_test(NAME deploy_manifests_valid
  COMMAND bash ${PROJECT_SOURCE_DIR}/deploy/validate/run.sh manifests)
add_test(NAME deploy_dockerfile_lint
  COMMAND bash ${PROJECT_SOURCE_DIR}/deploy/validate/run.sh dockerfile)
add_test(NAME deploy_demo_pki
  COMMAND bash ${PROJECT_SOURCE_DIR}/deploy/validate/demo-pki-test.sh
          $<TARGET_FILE:throttle_server> $<TARGET_FILE:throttlectl>)
set_tests_properties(deploy_manifests_valid deploy_dockerfile_lint
  PROPERTIES LABELS deploy TIMEOUT 300)
set_tests_properties(deploy_demo_pki PROPERTIES LABELS deploy TIMEOUT 60)

# The Prometheus alert rules of deploy/monitoring: `promtool check rules`
# (they parse, their expressions and templates are valid) and `promtool
# test rules` (each alert fires on the series it is for, and only then).
# promtool is Debian's prometheus package (scripts/setup.sh installs it).
add_test(NAME deploy_alert_rules
  COMMAND bash -c "promtool check rules alerts.yaml && promtool test rules alerts_test.yaml"
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/monitoring)
set_tests_properties(deploy_alert_rules PROPERTIES LABELS deploy TIMEOUT 60)
