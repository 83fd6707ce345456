# Offline checks of deploy/ (included from tests/CMakeLists.txt): the
# Kubernetes manifests and compose file against the API schemas and the
# project's rules (the high-available pair's included), and both
# Dockerfiles (the server's, deploy/etcd's) through two linters. Both use
# Node and npm packages locked in deploy/validate (installed on first use).
# The image build and run check, deploy/verify-image.sh (one server, then
# the pair on a real etcd with a failover), is no ctest test: it needs root
# and a Docker engine and takes minutes; .ci/run calls it.
add_test(NAME deploy_manifests_valid
  COMMAND bash ${PROJECT_SOURCE_DIR}/deploy/validate/run.sh manifests)
add_test(NAME deploy_dockerfile_lint
  COMMAND bash ${PROJECT_SOURCE_DIR}/deploy/validate/run.sh dockerfile)
set_tests_properties(deploy_manifests_valid deploy_dockerfile_lint
  PROPERTIES LABELS deploy TIMEOUT 300)
