// Offline checks of the deploy/ manifests, no cluster needed:
//   node validate-manifests.mjs [DEPLOY_DIR]   (default: this file's ../)
//
// Every YAML document in DEPLOY_DIR/k8s/*.yaml is parsed (yaml@2) and
//   - validated against the Kubernetes OpenAPI schema of its apiVersion and
//     kind (kubernetes-models: types, required fields, enums, formats);
//   - walked against @kubernetes/client-node's attribute maps, which name
//     every field a type has: an unknown or misspelled field is an error
//     (the schemas alone let most of them through);
//   - held to the project's rules: every container has resource requests
//     and limits and runs read-only, unprivileged, with no capabilities;
//     the server has gRPC probes; a single server runs as 1 replica,
//     recreated; a high-available one (--etcd_endpoints) as 2 or more with
//     liveness on --health_listen, readiness on the serving port, and what
//     that asks of the rollout (see checkServer); Services, volumes,
//     StatefulSets, etcd endpoints and the kustomization refer to things
//     that exist; the ConfigMap carries the same throttles as
//     deploy/throttles.conf.
// DEPLOY_DIR/compose.yaml is parsed and its references checked.
// Prints one line per problem and exits 1 if there is any.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments, parse as parseYaml } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const deployDir = path.resolve(process.argv[2] ?? path.join(here, ".."));
const k8sDir = path.join(deployDir, "k8s");
const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// --- parsing ----------------------------------------------------------------

// Returns [{file, index, doc}] for every non-empty document of `file`.
function loadDocuments(file) {
  const out = [];
  const text = readFileSync(file, "utf8");
  parseAllDocuments(text, { prettyErrors: true }).forEach((d, index) => {
    for (const e of [...d.errors, ...d.warnings]) {
      problem(`${file}#${index}`, `YAML: ${e.message}`);
    }
    const doc = d.toJS({ maxAliasCount: 0 });
    if (doc !== null && doc !== undefined) out.push({ file, index, doc });
  });
  return out;
}

// --- schema (kubernetes-models) ---------------------------------------------

async function modelClass(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/")
    ? apiVersion.split("/")
    : [null, apiVersion];
  const module = group
    ? `kubernetes-models/${group}/${version}/${kind}`
    : `kubernetes-models/${version}/${kind}`;
  try {
    return (await import(module))[kind];
  } catch {
    return undefined;
  }
}

async function checkSchema(where, doc) {
  const Model = await modelClass(doc.apiVersion, doc.kind);
  if (!Model) {
    problem(where, `unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
    return;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    problem(where, `schema: ${e.message}`);
  }
}

// --- unknown fields (client-node attribute maps) ------------------------------

const scalarTypes = new Set(["string", "number", "boolean", "Date", "any",
  "object", "IntOrString"]);

function walkFields(where, value, type) {
  if (value === null || value === undefined || scalarTypes.has(type)) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) return problem(where, `expected a list`);
    value.forEach((v, i) => walkFields(`${where}[${i}]`, v, m[1]));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    for (const [k, v] of Object.entries(value)) {
      walkFields(`${where}.${k}`, v, m[1]);
    }
    return;
  }
  const cls = k8s[type];
  if (!cls?.getAttributeTypeMap) {
    return problem(where, `no client-node model ${type}`);
  }
  if (typeof value !== "object" || Array.isArray(value)) {
    return problem(where, `expected an object (${type})`);
  }
  const attrs = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a]));
  for (const [k, v] of Object.entries(value)) {
    const attr = attrs.get(k);
    if (!attr) {
      problem(`${where}.${k}`, `unknown field (not in ${type})`);
    } else {
      walkFields(`${where}.${k}`, v, attr.type);
    }
  }
}

function checkFields(where, doc) {
  const version = doc.apiVersion.split("/").pop();
  const type = version[0].toUpperCase() + version.slice(1) + doc.kind;
  walkFields(`${where} ${doc.kind}/${doc.metadata?.name}`, doc, type);
}

// --- the project's rules ------------------------------------------------------

function podSpecOf(doc) {
  if (doc.kind === "Pod") return doc.spec;
  if (doc.kind === "CronJob") return doc.spec?.jobTemplate?.spec?.template?.spec;
  return doc.spec?.template?.spec;
}

function checkPodRules(where, doc, byKind) {
  const pod = podSpecOf(doc);
  if (!pod) return;
  const name = `${where} ${doc.kind}/${doc.metadata?.name}`;
  const volumes = new Set([...(pod.volumes ?? []),
    ...(doc.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata ?? {})]
    .map((v) => v.name));
  for (const v of pod.volumes ?? []) {
    const cm = v.configMap?.name;
    if (cm && !byKind("ConfigMap").some((d) => d.metadata?.name === cm)) {
      problem(name, `volume ${v.name}: no ConfigMap ${cm} in the manifests`);
    }
  }
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const at = `${name} container ${c.name}`;
    for (const r of ["requests", "limits"]) {
      for (const q of ["cpu", "memory"]) {
        if (!c.resources?.[r]?.[q]) problem(at, `no resources.${r}.${q}`);
      }
    }
    const sc = c.securityContext ?? {};
    if (sc.readOnlyRootFilesystem !== true) {
      problem(at, "securityContext.readOnlyRootFilesystem is not true");
    }
    if (sc.allowPrivilegeEscalation !== false) {
      problem(at, "securityContext.allowPrivilegeEscalation is not false");
    }
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) {
      problem(at, "securityContext.capabilities.drop lacks ALL");
    }
    if ((sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) !== true) {
      problem(at, "runAsNonRoot is not true");
    }
    for (const m of c.volumeMounts ?? []) {
      if (!volumes.has(m.name)) problem(at, `mounts unknown volume ${m.name}`);
    }
  }
}

// The value of --NAME=VALUE in `args`, or undefined.
const flagValue = (args, name) =>
  (args ?? []).find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
// The port of "host:port".
const portOf = (hostPort) => Number(hostPort.split(":").pop());
const selects = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
// How many pods maxUnavailable allows (rounded down, as the controller
// does; 25% when unset).
function maxUnavailablePods(strategy, replicas) {
  const v = strategy?.rollingUpdate?.maxUnavailable ?? "25%";
  return typeof v === "string" ? Math.floor((parseInt(v, 10) * replicas) / 100) : v;
}

function checkServer(where, doc, byKind) {
  const pod = podSpecOf(doc);
  const server = pod?.containers?.find((c) => c.name === "server");
  if (!server) return problem(where, "the server Deployment has no container 'server'");
  const args = server.args ?? [];
  if (flagValue(args, "config") === undefined) {
    problem(where, "server args have no --config=FILE");
  }
  if (server.readinessProbe?.grpc?.port !== 50051) {
    problem(where, "server readinessProbe is not grpc on the serving port 50051");
  }
  const replicas = doc.spec.replicas ?? 1;
  const strategy = doc.spec.strategy ?? {};
  const etcd = flagValue(args, "etcd_endpoints");
  if (etcd === undefined) {
    // One server holds the one global queue: a second one, even for the
    // moment of a rolling update, would hand out the full rate too.
    if (replicas !== 1) {
      problem(where, "without --etcd_endpoints the server must run as exactly 1 replica (one global queue)");
    }
    if (strategy.type !== "Recreate") {
      problem(where, "without --etcd_endpoints the strategy must be Recreate (a rolling update runs two servers side by side)");
    }
    if (server.livenessProbe?.grpc?.port !== 50051) {
      problem(where, "server livenessProbe is not grpc on port 50051");
    }
    return;
  }
  if (flagValue(args, "state_dir") !== undefined) {
    problem(where, "--state_dir and --etcd_endpoints exclude each other");
  }
  if (replicas < 2) {
    problem(where, "with --etcd_endpoints run at least 2 replicas (a leader and a standby)");
  }
  const health = flagValue(args, "health_listen");
  if (health === undefined) {
    problem(where, "with --etcd_endpoints the server needs --health_listen (the standby's liveness)");
  } else if (server.livenessProbe?.grpc?.port !== portOf(health)) {
    problem(where, `server livenessProbe is not grpc on the --health_listen port ${portOf(health)} (a standby keeps 50051 closed and would be restarted)`);
  }
  // Only the leader is Ready, so Kubernetes counts 1 available replica at
  // most: a rolling update may remove the old leader only if it may leave
  // 0 available, and the Deployment never "completes".
  if (strategy.type !== "Recreate" && maxUnavailablePods(strategy, replicas) < replicas) {
    problem(where, "with --etcd_endpoints only the leader is Ready: a rolling update needs maxUnavailable 100% (or strategy Recreate), else it never progresses");
  }
  if (doc.spec.progressDeadlineSeconds !== 2147483647) {
    problem(where, "with --etcd_endpoints set progressDeadlineSeconds: 2147483647 (no deadline): only the leader is Ready, so the rollout never completes and would be marked failed");
  }
  for (const pdb of byKind("PodDisruptionBudget")) {
    if (selects(pdb.spec?.selector?.matchLabels, doc.spec.template.metadata?.labels)) {
      problem(where, `PodDisruptionBudget ${pdb.metadata?.name} selects the high-available servers: with only the leader Ready it allows 0 disruptions and blocks the leader's eviction (every drain of its node)`);
    }
  }
  for (const endpoint of etcd.split(",")) {
    const host = endpoint.slice(0, endpoint.lastIndexOf(":"));
    if (/^[0-9.]+$/.test(host)) continue;
    const svc = byKind("Service").find((d) => d.metadata?.name === host.split(".")[0]);
    if (!svc) {
      problem(where, `--etcd_endpoints ${endpoint}: no Service ${host.split(".")[0]} in the manifests`);
    } else if (!(svc.spec?.ports ?? []).some((p) => p.port === portOf(endpoint))) {
      problem(where, `--etcd_endpoints ${endpoint}: Service ${svc.metadata.name} has no port ${portOf(endpoint)}`);
    }
  }
}

// A StatefulSet's serviceName must be a headless Service that selects it.
function checkStatefulSet(where, doc, byKind) {
  const svc = byKind("Service").find((d) => d.metadata?.name === doc.spec?.serviceName);
  if (!svc) {
    return problem(where, `StatefulSet ${doc.metadata?.name}: no Service ${doc.spec?.serviceName} (serviceName)`);
  }
  if (svc.spec?.clusterIP !== "None") {
    problem(where, `StatefulSet ${doc.metadata?.name}: Service ${svc.metadata.name} is not headless (clusterIP: None)`);
  }
  if (!selects(svc.spec?.selector, doc.spec?.template?.metadata?.labels)) {
    problem(where, `StatefulSet ${doc.metadata?.name}: Service ${svc.metadata.name} does not select its pods`);
  }
}

const workloadKinds = ["Deployment", "StatefulSet"];

function checkService(where, svc, byKind) {
  const selector = svc.spec?.selector ?? {};
  const pods = workloadKinds.flatMap(byKind).filter((d) =>
    selects(selector, d.spec?.template?.metadata?.labels));
  if (pods.length === 0) {
    return problem(where, `Service ${svc.metadata?.name} selects no Deployment or StatefulSet`);
  }
  const portNames = new Set(pods.flatMap((d) => d.spec.template.spec.containers
    .flatMap((c) => (c.ports ?? []).map((p) => p.name))));
  for (const p of svc.spec.ports ?? []) {
    if (typeof p.targetPort === "string" && !portNames.has(p.targetPort)) {
      problem(where, `Service port ${p.name}: no container port named ${p.targetPort}`);
    }
  }
}

// Lines of a throttle config without comments and blank lines.
const specLines = (text) => text.split("\n").map((l) => l.replace(/#.*/, "").trim())
  .filter((l) => l !== "");

function checkConfigMap(where, cm) {
  const conf = path.join(deployDir, "throttles.conf");
  const data = cm.data?.["throttles.conf"];
  if (data === undefined) return problem(where, "ConfigMap has no throttles.conf");
  const spec = /^[A-Za-z0-9_.-]+( (max_n|per|mode|burst|manual_emit)=\S+)+$/;
  for (const line of specLines(data)) {
    if (!spec.test(line)) problem(where, `not a throttle spec: '${line}'`);
  }
  if (existsSync(conf) &&
      specLines(readFileSync(conf, "utf8")).join("\n") !== specLines(data).join("\n")) {
    problem(where, `throttles.conf differs from ${conf}`);
  }
}

function checkKustomization(where, doc, files) {
  const listed = new Set(doc.resources ?? []);
  for (const r of listed) {
    if (!existsSync(path.join(k8sDir, r))) problem(where, `resource ${r} does not exist`);
  }
  for (const f of files) {
    const base = path.basename(f);
    if (base !== "kustomization.yaml" && !listed.has(base)) {
      problem(where, `${base} is not listed in resources`);
    }
  }
}

// --- compose ------------------------------------------------------------------

function checkCompose(file) {
  let compose;
  try {
    compose = parseYaml(readFileSync(file, "utf8"), { merge: true, prettyErrors: true });
  } catch (e) {
    return problem(file, `YAML: ${e.message}`);
  }
  const services = compose?.services ?? {};
  if (Object.keys(services).length === 0) problem(file, "no services");
  for (const [name, s] of Object.entries(services)) {
    if (!s.image && !s.build) problem(file, `service ${name}: no image or build`);
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) {
      if (!services[d]) problem(file, `service ${name} depends on unknown ${d}`);
    }
    for (const v of s.volumes ?? []) {
      const source = typeof v === "string" ? v.split(":")[0] : v.source;
      if (source?.startsWith(".") &&
          !existsSync(path.resolve(path.dirname(file), source))) {
        problem(file, `service ${name}: volume source ${source} does not exist`);
      }
    }
    if (s.build) {
      const context = typeof s.build === "string" ? s.build : s.build.context;
      const dockerfile = path.resolve(path.dirname(file), context ?? ".",
        s.build.dockerfile ?? "Dockerfile");
      if (!existsSync(dockerfile)) problem(file, `service ${name}: no ${dockerfile}`);
    }
  }
  // The hosts in --address, --etcd_endpoints and THROTTLE_ADDRESS are
  // services or network aliases of this file.
  const reachable = new Set(Object.keys(services));
  for (const s of Object.values(services)) {
    const networks = s.networks && !Array.isArray(s.networks) ? s.networks : {};
    for (const n of Object.values(networks)) {
      for (const alias of n?.aliases ?? []) reachable.add(alias);
    }
  }
  for (const [name, s] of Object.entries(services)) {
    const env = Array.isArray(s.environment)
      ? Object.fromEntries(s.environment.map((e) => e.split(/=(.*)/s)))
      : s.environment ?? {};
    const text = [s.command, s.entrypoint].flat().filter(Boolean).join(" ");
    const targets = [...text.matchAll(/--(?:address|etcd_endpoints)=["']?([^\s"']+)/g)]
      .map((m) => m[1]);
    if (env.THROTTLE_ADDRESS) targets.push(env.THROTTLE_ADDRESS);
    for (const target of targets) {
      if (/^(ipv4|ipv6|unix):/.test(target)) continue;
      for (const endpoint of target.replace(/^dns:\/\/[^/]*\//, "").split(",")) {
        const host = endpoint.slice(0, endpoint.lastIndexOf(":"));
        if (host === "localhost" || /^[0-9.]+$/.test(host)) continue;
        if (!reachable.has(host)) {
          problem(file, `service ${name}: ${target}: no service or network alias ${host}`);
        }
      }
    }
  }
}

// --- main -------------------------------------------------------------------

const files = readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f)).sort()
  .map((f) => path.join(k8sDir, f));
const docs = files.flatMap(loadDocuments);
const manifests = docs.filter(({ doc }) => doc.kind !== "Kustomization");
const byKind = (kind) => manifests.filter(({ doc }) => doc.kind === kind)
  .map(({ doc }) => doc);

for (const { file, index, doc } of docs) {
  const where = `${path.relative(deployDir, file)}#${index}`;
  if (typeof doc !== "object" || !doc.apiVersion || !doc.kind) {
    problem(where, "not a Kubernetes object (apiVersion and kind)");
    continue;
  }
  if (doc.kind === "Kustomization") {
    checkKustomization(where, doc, files);
    continue;
  }
  await checkSchema(where, doc);
  checkFields(where, doc);
  checkPodRules(where, doc, byKind);
  if (doc.kind === "Service") checkService(where, doc, byKind);
  if (doc.kind === "ConfigMap") checkConfigMap(where, doc);
  if (doc.kind === "StatefulSet") checkStatefulSet(where, doc, byKind);
  if (doc.kind === "Deployment" &&
      doc.spec?.template?.metadata?.labels?.["app.kubernetes.io/component"] === "server") {
    checkServer(where, doc, byKind);
  }
}
if (!byKind("Deployment").length) problem(k8sDir, "no Deployment");
const compose = path.join(deployDir, "compose.yaml");
if (existsSync(compose)) checkCompose(compose);

for (const p of problems) console.error(p);
console.log(`${manifests.length} manifests in ${files.length} files: ` +
  (problems.length ? `${problems.length} problems` : "OK"));
process.exit(problems.length ? 1 : 0);
