// Offline checks of the deploy/ manifests, no cluster needed:
//   node validate-manifests.mjs [DEPLOY_DIR]   (default: this file's ../)
//
// The kustomizations DEPLOY_DIR/k8s/base and DEPLOY_DIR/k8s/overlays/demo
// are resolved (kustomize.mjs: resources, the configMapGenerator with its
// hashed names, the overlay on the base; and compared object by object
// with `kubectl kustomize` where a kubectl with kustomize is on the PATH)
// and held to their layout (checkLayout): the base has no Job and the demo
// overlay is the base plus the workers Job; every ConfigMap a pod mounts
// comes from a configMapGenerator with a name hash (a change of it rolls
// the pods) and no hand-written ConfigMap carries throttles.yaml or
// policy.conf; every PodDisruptionBudget selects a workload, etcd has one
// with maxUnavailable 1, the high-available servers none (checkServer);
// every YAML file in those directories is read by its kustomization.
// Every document of the demo overlay (the base's and the Job) is parsed
// (yaml@2) and
//   - validated against the Kubernetes OpenAPI schema of its apiVersion and
//     kind (kubernetes-models: types, required fields, enums, formats);
//   - walked against @kubernetes/client-node's attribute maps, which name
//     every field a type has: an unknown or misspelled field is an error
//     (the schemas alone let most of them through);
//   - held to the project's rules: every container has resource requests
//     and limits and runs read-only, unprivileged, with no capabilities;
//     the server's probes fit its transport (gRPC, or TCP on a TLS serving
//     port); a single server runs as 1 replica, recreated; a high-available
//     one (--etcd_endpoints) as 2 or more with liveness on --health_listen,
//     readiness on the serving port, and what that asks of the rollout
//     (see checkServer); Services, volumes, StatefulSets, etcd endpoints
//     and the kustomization refer to things that exist; the ConfigMaps
//     carry the same throttles as deploy/throttles.yaml and the same policy
//     as deploy/policy.conf;
//   - security (checkSecurity): every file a flag or THROTTLE_*/ETCDCTL_*
//     variable names lies in a mounted volume that holds it (a ConfigMap
//     key, or tls.crt/tls.key/ca.crt of a TLS Secret); Secret volumes are
//     not world-readable and are readable by the pod's non-root user
//     (fsGroup); no volume is mounted inside another; with mTLS on the
//     server every client of the Service has a CA, a certificate and a
//     key; TLS to etcd on both sides or neither.
// DEPLOY_DIR/k8s/cert-manager/ (optional kustomize Component): Issuers and
// Certificates checked for their fields and held to the manifests: every
// Secret a pod mounts is issued there, the server's certificate names what
// the clients dial, client certificates are issued by the server's CA with
// an identity the policy knows, and etcd's CA is another one.
// DEPLOY_DIR/compose.yaml is parsed and its references checked (the
// certificate directories of make-demo-certs.sh count as present).
// Prints one line per problem and exits 1 if there is any.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { firstDifference, kubectlKustomize, resolveKustomization } from "./kustomize.mjs";

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

// The ConfigMap names a volume reads, directly or projected.
const configMapsOf = (v) => [v.configMap?.name,
  ...(v.projected?.sources ?? []).map((s) => s.configMap?.name)].filter(Boolean);
// The Secrets a volume reads, with the mode their files get:
// [{name, mode, items}].
const secretsOf = (v) => [
  ...(v.secret ? [{ name: v.secret.secretName, mode: v.secret.defaultMode,
    items: v.secret.items }] : []),
  ...(v.projected?.sources ?? []).filter((s) => s.secret).map((s) => ({
    name: s.secret.name, mode: v.projected.defaultMode, items: s.secret.items })),
].map((s) => ({ ...s, mode: s.mode ?? 0o644 }));
const octal = (m) => `0${m.toString(8)}`;

function checkPodRules(where, doc, byKind) {
  const pod = podSpecOf(doc);
  if (!pod) return;
  const name = `${where} ${doc.kind}/${doc.metadata?.name}`;
  const volumes = new Set([...(pod.volumes ?? []),
    ...(doc.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata ?? {})]
    .map((v) => v.name));
  for (const v of pod.volumes ?? []) {
    for (const cm of configMapsOf(v)) {
      if (!byKind("ConfigMap").some((d) => d.metadata?.name === cm)) {
        problem(name, `volume ${v.name}: no ConfigMap ${cm} in the manifests`);
      }
    }
    // Keys: not for everyone in the container, but for its non-root user,
    // which owns none of a Secret volume's files (root does; with fsGroup
    // their group is the pod's).
    for (const secret of secretsOf(v)) {
      if (secret.mode & 0o007) {
        problem(name, `volume ${v.name}: Secret ${secret.name} with mode ${octal(secret.mode)} is readable by every user (use 0440, 288, with fsGroup)`);
      } else if (!(secret.mode & 0o040) || pod.securityContext?.fsGroup === undefined) {
        problem(name, `volume ${v.name}: Secret ${secret.name} with mode ${octal(secret.mode)}${pod.securityContext?.fsGroup === undefined ? " and no fsGroup" : ""}: its files are readable by root only, not by the pod's user (use 0440, 288, with securityContext.fsGroup)`);
      }
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
      // The runtime would have to create the mount point in the outer
      // volume, which is read-only (ConfigMap, Secret) or someone's data.
      for (const outer of c.volumeMounts) {
        if (outer !== m && m.mountPath.startsWith(`${outer.mountPath.replace(/\/$/, "")}/`)) {
          problem(at, `volume ${m.name} is mounted inside volume ${outer.name} (${m.mountPath} in ${outer.mountPath}): mount them side by side`);
        }
      }
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

// What a probe does and on which port number ({kind, port}; a named port
// resolved through the container's ports), or undefined.
function probeOf(container, probe) {
  if (!probe) return undefined;
  for (const kind of ["grpc", "tcpSocket", "httpGet", "exec"]) {
    if (!probe[kind]) continue;
    let port = probe[kind].port;
    if (typeof port === "string") {
      port = (container.ports ?? []).find((p) => p.name === port)?.containerPort ?? port;
    }
    return { kind, port };
  }
  return undefined;
}
const probeText = (p) => (p ? `${p.kind} on ${p.port}` : "none");

function checkServer(where, doc, byKind) {
  const pod = podSpecOf(doc);
  const server = pod?.containers?.find((c) => c.name === "server");
  if (!server) return problem(where, "the server Deployment has no container 'server'");
  const args = server.args ?? [];
  if (flagValue(args, "config") === undefined) {
    problem(where, "server args have no --config=FILE");
  }
  // The image's entry point listens on 0.0.0.0:50051 unless --listen says
  // otherwise.
  const serving = portOf(flagValue(args, "listen") ?? "0.0.0.0:50051");
  const tls = flagValue(args, "tls_cert") !== undefined;
  if (tls && flagValue(args, "tls_key") === undefined) {
    problem(where, "--tls_cert without --tls_key");
  }
  if (!tls && flagValue(args, "tls_client_ca") !== undefined) {
    problem(where, "--tls_client_ca without --tls_cert: mTLS needs the server's own certificate");
  }
  if (flagValue(args, "policy") !== undefined && flagValue(args, "tls_client_ca") === undefined &&
      flagValue(args, "token_file") === undefined) {
    problem(where, "--policy without --tls_client_ca or --token_file: no call can prove an identity, so every call is UNAUTHENTICATED");
  }
  // The kubelet's gRPC probe speaks plaintext and has no client
  // certificate: on a TLS port only a TCP connect works (it still tells
  // the leader, the only one listening, from a standby).
  const readiness = probeOf(server, server.readinessProbe);
  if (tls) {
    if (readiness?.kind !== "tcpSocket" || readiness.port !== serving) {
      problem(where, `server readinessProbe is ${probeText(readiness)}, not tcpSocket on the serving port ${serving}: with --tls_cert that port speaks TLS, which the kubelet's gRPC probe cannot`);
    }
  } else if (!["grpc", "tcpSocket"].includes(readiness?.kind) || readiness.port !== serving) {
    problem(where, `server readinessProbe is ${probeText(readiness)}, not grpc (or tcpSocket) on the serving port ${serving}`);
  }
  const liveness = probeOf(server, server.livenessProbe);
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
    const want = tls ? "tcpSocket" : "grpc";
    if (liveness?.kind !== want || liveness.port !== serving) {
      problem(where, `server livenessProbe is ${probeText(liveness)}, not ${want} on the serving port ${serving}${tls ? " (TLS: the kubelet's gRPC probe cannot)" : ""}`);
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
  } else if (liveness?.kind !== "grpc" || liveness.port !== portOf(health)) {
    problem(where, `server livenessProbe is ${probeText(liveness)}, not grpc on the --health_listen port ${portOf(health)} (plaintext on leader and standby; a standby keeps ${serving} closed and would be restarted)`);
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

// A ConfigMap carries throttles.yaml (the --config file), policy.conf
// (the --policy file), or both.
function checkConfigMap(where, cm) {
  const keys = Object.keys(cm.data ?? {});
  if (!keys.includes("throttles.yaml") && !keys.includes("policy.conf")) {
    return problem(where, `ConfigMap ${cm.metadata?.name} has neither throttles.yaml nor policy.conf`);
  }
  if (keys.includes("throttles.yaml")) checkThrottlesYaml(where, cm);
  if (keys.includes("policy.conf")) checkPolicyConf(where, cm);
}

// Rules of a policy file: [{identity, role, throttles, line}] (the server's
// own check, --check_policy, is run on deploy/policy.conf by
// verify-image.sh).
const roles = ["worker", "controller", "admin"];
function policyRules(text) {
  return text.split("\n").map((l, i) => ({ fields: l.replace(/#.*/, "").trim().split(/\s+/), line: i + 1 }))
    .filter(({ fields }) => fields[0] !== "")
    .map(({ fields, line }) => ({ identity: fields[0], role: fields[1],
      throttles: fields.slice(2), line }));
}
// Shell-style glob ('*' any run, '?' one character), as the policy's.
const globMatch = (pattern, text) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&")
  .replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "s").test(text);

function checkPolicyConf(where, cm) {
  const conf = path.join(deployDir, "policy.conf");
  const data = cm.data["policy.conf"];
  for (const r of policyRules(data)) {
    if (!roles.includes(r.role) || r.throttles.length === 0) {
      problem(where, `policy.conf line ${r.line}: not IDENTITY-PATTERN ROLE THROTTLE-PATTERN... with ROLE one of ${roles.join(", ")}`);
    }
  }
  if (existsSync(conf) &&
      specLines(readFileSync(conf, "utf8")).join("\n") !== specLines(data).join("\n")) {
    problem(where, `policy.conf differs from ${conf}`);
  }
}

// The --config file (server/service/config_file.h): "throttles:" maps
// names to settings with max_n and per, and only the known keys. The
// server checks values (throttle_server --check_config); this checks the
// shape and that the ConfigMap says what deploy/throttles.yaml says.
function checkThrottlesYaml(where, cm) {
  const file = path.join(deployDir, "throttles.yaml");
  const known = ["max_n", "per", "mode", "burst", "manual_emit", "catch_up"];
  let data;
  try {
    data = parseYaml(cm.data["throttles.yaml"], { uniqueKeys: true });
  } catch (e) {
    return problem(where, `throttles.yaml: ${e.message}`);
  }
  const throttles = data?.throttles;
  if (typeof throttles !== "object" || throttles === null) {
    return problem(where, "throttles.yaml has no mapping \"throttles\"");
  }
  for (const [name, settings] of Object.entries(throttles)) {
    if (typeof settings !== "object" || settings === null) {
      problem(where, `throttles.yaml: throttle ${name} has no settings`);
      continue;
    }
    for (const key of Object.keys(settings)) {
      if (!known.includes(key)) problem(where, `throttles.yaml: ${name}.${key} is not one of ${known.join(", ")}`);
    }
    for (const key of ["max_n", "per"]) {
      if (!(key in settings)) problem(where, `throttles.yaml: ${name} has no ${key}`);
    }
  }
  if (existsSync(file) &&
      JSON.stringify(parseYaml(readFileSync(file, "utf8"))) !== JSON.stringify(data)) {
    problem(where, `throttles.yaml differs from ${file}`);
  }
}

// --- the kustomizations ------------------------------------------------------

// Every YAML file of DIR is read by its kustomization (a resource or a
// generator's file).
function checkAllRead(dir, listed) {
  for (const f of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
    if (!listed.has(path.join(dir, f))) {
      problem(path.relative(deployDir, path.join(dir, f)), "not read by the kustomization.yaml beside it (resources or configMapGenerator)");
    }
  }
}

// What the objects are, by kind/name, to compare two renderings.
const idOf = (doc) => `${doc.kind}/${doc.metadata?.name}`;

// The base and the demo overlay: what each holds, and where the
// configuration comes from (see the header).
function checkLayout(base, demo) {
  const at = (r) => path.relative(deployDir, path.join(r.dir, "kustomization.yaml"));
  for (const { doc } of base.docs) {
    if (["Job", "CronJob"].includes(doc.kind)) {
      problem(at(base), `${idOf(doc)} is in the base: the workers are the demo overlay's (k8s/overlays/demo)`);
    }
  }
  const jobs = demo.docs.filter(({ doc }) => doc.kind === "Job");
  if (!jobs.some(({ doc }) => doc.metadata?.labels?.["app.kubernetes.io/component"] === "worker")) {
    problem(at(demo), "no workers Job (a Job with app.kubernetes.io/component: worker)");
  }
  const baseIds = new Set(base.docs.map(({ doc }) => idOf(doc)));
  for (const id of baseIds) {
    if (!demo.docs.some(({ doc }) => idOf(doc) === id)) problem(at(demo), `lacks the base's ${id}`);
  }
  for (const { doc } of demo.docs) {
    if (!baseIds.has(idOf(doc)) && doc.kind !== "Job") {
      problem(at(demo), `${idOf(doc)}: the demo overlay adds only the workers Job to the base`);
    }
  }
  const generated = new Map(base.generated.map((g) => [g.generatedName, g]));
  for (const { file, index, doc } of base.docs) {
    const where = `${path.relative(deployDir, file)}#${index}`;
    if (doc.kind === "ConfigMap" && !generated.has(doc.metadata?.name) &&
        ["throttles.yaml", "policy.conf"].some((k) => k in (doc.data ?? {}))) {
      problem(where, `ConfigMap ${doc.metadata?.name} is written by hand: make it with the configMapGenerator, so that a change rolls the pods`);
    }
    for (const v of podSpecOf(doc)?.volumes ?? []) {
      for (const cm of configMapsOf(v)) {
        const g = generated.get(cm);
        if (!g) {
          problem(where, `${idOf(doc)} volume ${v.name}: ConfigMap ${cm} does not come from a configMapGenerator (with its name hash, a change of it rolls the pods)`);
        } else if (g.generatedName === g.name) {
          problem(where, `${idOf(doc)} volume ${v.name}: ConfigMap ${cm} is generated without a name hash (disableNameSuffixHash): a change of it would not roll the pods`);
        }
      }
    }
  }
  for (const key of ["throttles.yaml", "policy.conf"]) {
    const g = base.generated.find((g) => g.keys.includes(key));
    if (!g) {
      problem(at(base), `no configMapGenerator makes ${key}`);
      continue;
    }
    const mounted = base.docs.some(({ doc }) => doc.kind === "Deployment" &&
      doc.spec?.template?.metadata?.labels?.["app.kubernetes.io/component"] === "server" &&
      (podSpecOf(doc)?.volumes ?? []).some((v) => configMapsOf(v).includes(g.generatedName)));
    if (!mounted) problem(g.where, `the server Deployment does not mount ${g.generatedName} (${key})`);
  }
}

// Every budget selects a workload; etcd's (maxUnavailable 1) keeps a
// quorum of 3 members through drains and, unlike minAvailable, does not
// block them with 1 member. The servers' (none) are checked in
// checkServer.
function checkDisruptionBudgets(docs) {
  const workloads = docs.filter(({ doc }) => workloadKinds.includes(doc.kind)).map(({ doc }) => doc);
  for (const { file, index, doc } of docs.filter(({ doc }) => doc.kind === "PodDisruptionBudget")) {
    const where = `${path.relative(deployDir, file)}#${index} ${idOf(doc)}`;
    if (!workloads.some((w) => selects(doc.spec?.selector?.matchLabels, w.spec?.template?.metadata?.labels))) {
      problem(where, "selects no Deployment or StatefulSet");
    }
  }
  for (const sts of workloads.filter((w) => w.kind === "StatefulSet" &&
      w.spec?.template?.metadata?.labels?.["app.kubernetes.io/component"] === "etcd")) {
    const budgets = docs.filter(({ doc }) => doc.kind === "PodDisruptionBudget" &&
      selects(doc.spec?.selector?.matchLabels, sts.spec.template.metadata.labels)).map(({ doc }) => doc);
    if (budgets.length !== 1) {
      problem(idOf(sts), `${budgets.length} PodDisruptionBudgets select the etcd members: want one, maxUnavailable: 1 (a drain takes one member at a time)`);
    } else if (budgets[0].spec?.maxUnavailable !== 1 || budgets[0].spec?.minAvailable !== undefined) {
      problem(idOf(budgets[0]), `etcd's budget is ${JSON.stringify({ minAvailable: budgets[0].spec?.minAvailable, maxUnavailable: budgets[0].spec?.maxUnavailable })}: want maxUnavailable: 1 and no minAvailable (minAvailable: 1 of ${sts.spec.replicas ?? 1} member blocks every drain of its node)`);
    }
  }
}

// `kubectl kustomize` of r.dir, where there is one, against the
// resolution: the same objects, field by field.
function checkWithKubectl(r) {
  const rendered = kubectlKustomize(r.dir);
  const where = path.relative(deployDir, r.dir);
  if (rendered.unavailable) return `${where}: not compared with kubectl kustomize (${rendered.unavailable})`;
  if (rendered.error) {
    problem(where, `kubectl kustomize fails: ${rendered.error}`);
    return `${where}: kubectl kustomize failed`;
  }
  const ours = new Map(r.docs.map(({ doc }) => [idOf(doc), doc]));
  const theirs = new Map(rendered.docs.map((doc) => [idOf(doc), doc]));
  for (const id of new Set([...ours.keys(), ...theirs.keys()])) {
    if (!ours.has(id)) problem(where, `kubectl kustomize makes ${id}, the resolution here does not`);
    else if (!theirs.has(id)) problem(where, `the resolution here makes ${id}, kubectl kustomize does not`);
    else {
      const d = firstDifference(ours.get(id), theirs.get(id));
      if (d) problem(where, `${id} differs from kubectl kustomize's at ${d}`);
    }
  }
  return `${where}: the same ${theirs.size} objects as kubectl kustomize`;
}

// --- security -----------------------------------------------------------------

// Flags and variables that name a file the container must find.
const fileFlags = ["config", "policy", "token_file", "tls_cert", "tls_key",
  "tls_client_ca", "tls_ca", "etcd_tls_ca", "etcd_tls_cert", "etcd_tls_key",
  "cert-file", "key-file", "trusted-ca-file", "peer-cert-file", "peer-key-file",
  "peer-trusted-ca-file"];
const fileEnv = ["THROTTLE_TLS_CA", "THROTTLE_TLS_CERT", "THROTTLE_TLS_KEY",
  "THROTTLE_TOKEN_FILE", "ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY"];
// What a kubernetes.io/tls Secret from cert-manager holds.
const tlsSecretKeys = ["tls.crt", "tls.key", "ca.crt"];
const argsOf = (c) => [...(c.command ?? []), ...(c.args ?? [])];
const envOf = (c) => Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined)
  .map((e) => [e.name, e.value]));
// A container's setting: --flag=VALUE, else the variable.
const settingOf = (c, flag, env) => flagValue(argsOf(c), flag) ?? envOf(c)[env];
const stripSlash = (p) => p.replace(/\/$/, "");

// Checks that `file` (named by `what` in container c of `pod`) is in a
// mounted volume that holds it; returns the Secret it comes from, if one.
function checkFile(at, pod, c, what, file, byKind) {
  if (file.includes("$(")) return undefined;
  const mount = (c.volumeMounts ?? [])
    .filter((m) => file.startsWith(`${stripSlash(m.mountPath)}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) {
    // The image's own files (the system's CA bundle, say).
    if (!/^\/(etc\/ssl|usr)\//.test(file)) {
      problem(at, `${what} ${file} is in no mounted volume (the image has no such file)`);
    }
    return undefined;
  }
  const volume = (pod.volumes ?? []).find((v) => v.name === mount.name);
  if (!volume || mount.subPath) return undefined;
  const key = file.slice(stripSlash(mount.mountPath).length + 1);
  const held = new Map();  // key -> Secret name or null (a ConfigMap)
  const sources = volume.projected?.sources ??
    [volume.configMap ? { configMap: volume.configMap } : {},
      volume.secret ? { secret: { ...volume.secret, name: volume.secret.secretName } } : {}];
  let known = Boolean(volume.configMap || volume.secret || volume.projected);
  for (const src of sources) {
    if (src.configMap) {
      const cm = byKind("ConfigMap").find((d) => d.metadata?.name === src.configMap.name);
      if (!cm) known = false;
      const keys = src.configMap.items?.map((i) => i.path) ?? Object.keys(cm?.data ?? {});
      for (const k of keys) held.set(k, null);
    } else if (src.secret) {
      for (const k of src.secret.items?.map((i) => i.path) ?? tlsSecretKeys) {
        held.set(k, src.secret.name);
      }
    } else if (volume.projected && Object.keys(src).length) {
      known = false;  // downwardAPI, serviceAccountToken: not followed
    }
  }
  if (known && !held.has(key)) {
    problem(at, `${what} ${file}: volume ${volume.name} (at ${mount.mountPath}) has no ${key}; it holds ${[...held.keys()].join(", ") || "nothing"}`);
  }
  return held.get(key) ?? undefined;
}

// The host of a gRPC target ("dns:///h:p", "h:p"), or undefined for an
// address literal.
function targetHost(target) {
  const t = target.replace(/^dns:\/\/[^/]*\//, "");
  if (/^(ipv4|ipv6|unix):/.test(t)) return undefined;
  const host = t.slice(0, t.lastIndexOf(":"));
  return /^[0-9.]+$/.test(host) || host === "" ? undefined : host;
}

// Checks every pod's files, the clients' credentials against the server's
// transport, and TLS to etcd; returns what cert-manager's Certificates
// must match: {serverSecrets, clientCaSecrets, clients: [{at, host,
// certSecret}], etcdServerSecrets, etcdClientSecrets, etcdHosts,
// podSecrets: Map secret -> [at]}.
function checkSecurity(workloads, byKind) {
  const facts = { serverSecrets: new Set(), clientCaSecrets: new Set(), clients: [],
    etcdServerSecrets: new Set(), etcdClientSecrets: new Set(), etcdHosts: new Set(),
    podSecrets: new Map() };
  const servers = [];
  for (const { where, doc } of workloads) {
    const pod = podSpecOf(doc);
    if (!pod) continue;
    const name = `${where} ${doc.kind}/${doc.metadata?.name}`;
    for (const v of pod.volumes ?? []) {
      for (const s of secretsOf(v)) {
        facts.podSecrets.set(s.name, [...(facts.podSecrets.get(s.name) ?? []), name]);
      }
    }
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      const at = `${name} container ${c.name}`;
      const secretOf = {};
      for (const f of fileFlags) {
        const file = flagValue(argsOf(c), f);
        if (file !== undefined) secretOf[f] = checkFile(at, pod, c, `--${f}`, file, byKind);
      }
      for (const e of fileEnv) {
        const file = envOf(c)[e];
        if (file !== undefined) secretOf[e] = checkFile(at, pod, c, e, file, byKind);
      }
      const isServer = doc.spec?.template?.metadata?.labels?.["app.kubernetes.io/component"] === "server" &&
        c.name === "server";
      if (isServer) {
        servers.push({ doc, c });
        if (secretOf.tls_cert) facts.serverSecrets.add(secretOf.tls_cert);
        if (secretOf.tls_client_ca) facts.clientCaSecrets.add(secretOf.tls_client_ca);
        if (secretOf.etcd_tls_cert) facts.etcdClientSecrets.add(secretOf.etcd_tls_cert);
        for (const e of (flagValue(argsOf(c), "etcd_endpoints") ?? "").split(",")) {
          const host = e ? targetHost(e) : undefined;
          if (host) facts.etcdHosts.add(host);
        }
      }
      if (flagValue(argsOf(c), "cert-file") !== undefined &&
          secretOf["cert-file"]) {
        facts.etcdServerSecrets.add(secretOf["cert-file"]);
      }
      const target = settingOf(c, "address", "THROTTLE_ADDRESS");
      if (target !== undefined && !isServer) {
        facts.clients.push({ at, pod, c, doc, host: targetHost(target), target,
          certSecret: secretOf.tls_cert ?? secretOf.THROTTLE_TLS_CERT });
      }
    }
  }
  for (const { doc, c } of servers) {
    const args = argsOf(c);
    const tls = flagValue(args, "tls_cert") !== undefined;
    const mtls = flagValue(args, "tls_client_ca") !== undefined;
    // The clients that reach this server through a Service of it.
    const services = byKind("Service").filter((svc) =>
      selects(svc.spec?.selector, doc.spec?.template?.metadata?.labels)).map((svc) => svc.metadata.name);
    for (const client of facts.clients.filter((cl) => services.includes(cl.host?.split(".")[0]))) {
      const has = (flag, env) => settingOf(client.c, flag, env) !== undefined;
      if (tls && !has("tls_ca", "THROTTLE_TLS_CA")) {
        problem(client.at, `${client.target}: the server speaks TLS, and this client has no CA to verify it (--tls_ca or THROTTLE_TLS_CA)`);
      }
      if (mtls && !(has("tls_cert", "THROTTLE_TLS_CERT") && has("tls_key", "THROTTLE_TLS_KEY"))) {
        problem(client.at, `${client.target}: the server requires client certificates (--tls_client_ca), and this client has none (--tls_cert/--tls_key or THROTTLE_TLS_CERT/THROTTLE_TLS_KEY)`);
      }
      if (!tls && has("tls_ca", "THROTTLE_TLS_CA")) {
        problem(client.at, `${client.target}: the client speaks TLS, the server plaintext (no --tls_cert)`);
      }
    }
    // TLS to etcd on both sides or neither.
    const etcd = flagValue(args, "etcd_endpoints");
    if (etcd === undefined) continue;
    for (const host of new Set(etcd.split(",").map(targetHost).filter(Boolean))) {
      const svc = byKind("Service").find((d) => d.metadata?.name === host.split(".")[0]);
      const sts = svc && workloads.map((w) => w.doc).find((d) => d.kind === "StatefulSet" &&
        selects(svc.spec?.selector, d.spec?.template?.metadata?.labels));
      const member = sts?.spec.template.spec.containers[0];
      if (!member) continue;
      const listen = flagValue(argsOf(member), "listen-client-urls") ?? "http://localhost:2379";
      const etcdTls = /^https:/.test(listen);
      if (etcdTls !== (flagValue(args, "etcd_tls_ca") !== undefined)) {
        problem(`${doc.kind}/${doc.metadata?.name}`, `etcd ${host} listens on ${listen}, and the server ${etcdTls ? "has no" : "has"} --etcd_tls_ca`);
      }
      if (argsOf(member).includes("--client-cert-auth") && flagValue(args, "etcd_tls_cert") === undefined) {
        problem(`${doc.kind}/${doc.metadata?.name}`, `etcd ${host} requires client certificates (--client-cert-auth), the server has no --etcd_tls_cert`);
      }
      if (etcdTls && !argsOf(member).includes("--client-cert-auth")) {
        problem(`StatefulSet/${sts.metadata?.name}`, "etcd speaks TLS without --client-cert-auth: any pod that reaches it can write every throttle");
      }
    }
  }
  return facts;
}

// --- cert-manager (optional component) ----------------------------------------

const certUsages = new Set(["signing", "digital signature", "content commitment",
  "key encipherment", "key agreement", "data encipherment", "cert sign", "crl sign",
  "encipher only", "decipher only", "any", "server auth", "client auth", "code signing",
  "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user",
  "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc"]);
const certificateFields = new Set(["secretName", "commonName", "dnsNames", "uris",
  "ipAddresses", "emailAddresses", "otherNames", "usages", "duration", "renewBefore",
  "privateKey", "issuerRef", "isCA", "subject", "literalSubject", "secretTemplate",
  "keystores", "revisionHistoryLimit", "additionalOutputFormats",
  "encodeUsagesInRequest", "nameConstraints"]);
const privateKeyFields = { algorithm: ["RSA", "ECDSA", "Ed25519"],
  encoding: ["PKCS1", "PKCS8"], rotationPolicy: ["Never", "Always"], size: null };
const issuerKinds = ["selfSigned", "ca", "acme", "vault", "venafi"];
const goDuration = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
// A DNS name of a certificate (with a leading "*." wildcard) matches host.
const dnsMatches = (name, host) => name === host ||
  (name.startsWith("*.") && host.slice(host.indexOf(".")) === name.slice(1));

function checkCertManager(dir, facts, byKind) {
  const docs = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()
    .flatMap((f) => loadDocuments(path.join(dir, f)));
  const rel = (file, index) => `${path.relative(deployDir, file)}#${index}`;
  const certs = [];
  const issuers = new Map();
  for (const { file, index, doc } of docs) {
    const where = rel(file, index);
    if (doc.kind === "Component") {
      if (doc.apiVersion !== "kustomize.config.k8s.io/v1alpha1") {
        problem(where, "a kustomize Component is kustomize.config.k8s.io/v1alpha1");
      }
      const listed = new Set(doc.resources ?? []);
      for (const r of listed) {
        if (!existsSync(path.join(dir, r))) problem(where, `resource ${r} does not exist`);
      }
      for (const f of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
        if (f !== "kustomization.yaml" && !listed.has(f)) problem(where, `${f} is not listed in resources`);
      }
      continue;
    }
    if (doc.apiVersion !== "cert-manager.io/v1" || !["Certificate", "Issuer"].includes(doc.kind)) {
      problem(where, `${doc.apiVersion} ${doc.kind}: only cert-manager.io/v1 Certificate and Issuer belong here`);
      continue;
    }
    const spec = doc.spec ?? {};
    if (doc.kind === "Issuer") {
      const kinds = Object.keys(spec).filter((k) => issuerKinds.includes(k));
      if (kinds.length !== 1 || Object.keys(spec).length !== 1) {
        problem(where, `Issuer ${doc.metadata?.name}: spec must be exactly one of ${issuerKinds.join(", ")}`);
      }
      issuers.set(doc.metadata?.name, { where, doc });
      continue;
    }
    for (const k of Object.keys(spec)) {
      if (!certificateFields.has(k)) problem(where, `Certificate ${doc.metadata?.name}: unknown field spec.${k}`);
    }
    if (!spec.secretName) problem(where, `Certificate ${doc.metadata?.name}: no spec.secretName`);
    if (!spec.issuerRef?.name) problem(where, `Certificate ${doc.metadata?.name}: no spec.issuerRef.name`);
    if (!(spec.commonName || spec.dnsNames?.length || spec.uris?.length || spec.ipAddresses?.length)) {
      problem(where, `Certificate ${doc.metadata?.name}: names nothing (commonName, dnsNames, uris, ipAddresses)`);
    }
    for (const u of spec.usages ?? []) {
      if (!certUsages.has(u)) problem(where, `Certificate ${doc.metadata?.name}: unknown usage "${u}"`);
    }
    for (const [k, v] of Object.entries(spec.privateKey ?? {})) {
      if (!(k in privateKeyFields)) problem(where, `Certificate ${doc.metadata?.name}: unknown field spec.privateKey.${k}`);
      else if (privateKeyFields[k] && !privateKeyFields[k].includes(v)) {
        problem(where, `Certificate ${doc.metadata?.name}: spec.privateKey.${k} is not one of ${privateKeyFields[k].join(", ")}`);
      }
    }
    for (const k of ["duration", "renewBefore"]) {
      if (spec[k] !== undefined && !goDuration.test(spec[k])) {
        problem(where, `Certificate ${doc.metadata?.name}: spec.${k} "${spec[k]}" is not a duration (2160h)`);
      }
    }
    certs.push({ where, doc });
  }
  const issuing = (secret) => certs.find((c) => c.doc.spec.secretName === secret);
  for (const { where, doc } of certs) {
    const ref = doc.spec.issuerRef ?? {};
    if ((ref.kind ?? "Issuer") === "Issuer" && !issuers.has(ref.name)) {
      problem(where, `Certificate ${doc.metadata?.name}: no Issuer ${ref.name} here`);
    }
  }
  // A CA Issuer signs with the Secret of a CA Certificate made here.
  for (const { where, doc } of issuers.values()) {
    const secret = doc.spec?.ca?.secretName;
    if (secret && !issuing(secret)?.doc.spec.isCA) {
      problem(where, `Issuer ${doc.metadata?.name}: its Secret ${secret} is not issued here by a Certificate with isCA: true`);
    }
  }
  // Every Secret the pods mount is issued here.
  for (const [secret, users] of facts.podSecrets) {
    if (!issuing(secret)) problem(users[0], `Secret ${secret} is mounted but no Certificate in ${path.relative(deployDir, dir)} issues it`);
  }
  const hasUsage = (c, u) => (c.doc.spec.usages ?? ["digital signature", "key encipherment"]).includes(u);
  const issuerOf = (c) => c?.doc.spec.issuerRef?.name;
  const rules = policyRules(byKind("ConfigMap").map((d) => d.data?.["policy.conf"]).filter(Boolean).join("\n"));
  for (const secret of facts.serverSecrets) {
    const cert = issuing(secret);
    if (!cert) continue;
    if (!hasUsage(cert, "server auth")) problem(cert.where, `Certificate ${cert.doc.metadata.name} (the servers') lacks usage "server auth"`);
    for (const client of facts.clients) {
      if (client.host && !(cert.doc.spec.dnsNames ?? []).some((n) => dnsMatches(n, client.host))) {
        problem(cert.where, `Certificate ${cert.doc.metadata.name} (the servers') does not name ${client.host}, which ${client.at} dials`);
      }
    }
    // The servers trust client certificates from the CA in their client CA
    // file, ca.crt of a Secret: the CA of that Secret's issuer.
    for (const caSecret of facts.clientCaSecrets) {
      const caCert = issuing(caSecret);
      for (const client of facts.clients) {
        const cc = issuing(client.certSecret);
        if (cc && caCert && issuerOf(cc) !== issuerOf(caCert)) {
          problem(cc.where, `Certificate ${cc.doc.metadata.name} is issued by ${issuerOf(cc)}, but the servers trust client certificates of ${issuerOf(caCert)} (ca.crt of ${caSecret})`);
        }
      }
    }
  }
  for (const client of facts.clients) {
    const cc = issuing(client.certSecret);
    if (!cc) continue;
    if (!hasUsage(cc, "client auth")) problem(cc.where, `Certificate ${cc.doc.metadata.name} (a client's) lacks usage "client auth"`);
    const ids = cc.doc.spec.uris ?? [];
    if (rules.length && !ids.some((id) => rules.some((r) => globMatch(r.identity, id)))) {
      problem(cc.where, `Certificate ${cc.doc.metadata.name}: no rule of the policy matches its identity ${ids.join(", ") || "(no URI SAN)"}, so ${client.at} may call nothing`);
    }
  }
  // etcd trusts every certificate of its CA: that must not be the CA of the
  // throttle's clients.
  for (const secret of facts.etcdServerSecrets) {
    const cert = issuing(secret);
    if (!cert) continue;
    for (const host of facts.etcdHosts) {
      if (!(cert.doc.spec.dnsNames ?? []).some((n) => dnsMatches(n, host))) {
        problem(cert.where, `Certificate ${cert.doc.metadata.name} (etcd's) does not name ${host} (--etcd_endpoints)`);
      }
    }
    for (const e of facts.etcdClientSecrets) {
      const ec = issuing(e);
      if (ec && issuerOf(ec) !== issuerOf(cert)) {
        problem(ec.where, `Certificate ${ec.doc.metadata.name} (the servers' etcd client) is issued by ${issuerOf(ec)}, etcd's by ${issuerOf(cert)}: etcd would refuse it`);
      }
    }
    for (const client of facts.clients) {
      const cc = issuing(client.certSecret);
      if (cc && issuerOf(cc) === issuerOf(cert)) {
        problem(cc.where, `Certificate ${cc.doc.metadata.name} (${client.at}) comes from etcd's issuer ${issuerOf(cert)}: with it that client could write etcd`);
      }
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
  // ./demo-certs/NAME is made by make-demo-certs.sh (git-ignored): present
  // when NAME is one of the directories its header lists.
  const certScript = path.join(path.dirname(file), "make-demo-certs.sh");
  const certDirs = new Set(existsSync(certScript)
    ? [...readFileSync(certScript, "utf8").matchAll(/^#   ([a-z-]+)\/ /gm)].map((m) => m[1])
    : []);
  const made = (source) => {
    const m = /^\.\/demo-certs\/([^/]+)\/?$/.exec(source);
    return m !== null && certDirs.has(m[1]);
  };
  for (const [name, s] of Object.entries(services)) {
    if (!s.image && !s.build) problem(file, `service ${name}: no image or build`);
    const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
    for (const d of deps) {
      if (!services[d]) problem(file, `service ${name} depends on unknown ${d}`);
    }
    for (const v of s.volumes ?? []) {
      const source = typeof v === "string" ? v.split(":")[0] : v.source;
      if (source?.startsWith(".") && !made(source) &&
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
  const envOfService = (s) => (Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((e) => e.split(/=(.*)/s)))
    : s.environment ?? {});
  const textOf = (s) => [s.command, s.entrypoint].flat().filter(Boolean).join(" ");
  // --flag=VALUE in the command, else the variable.
  const settingIn = (s, flag, variable) =>
    new RegExp(`--${flag}=["']?([^\\s"']+)`).exec(textOf(s))?.[1] ?? envOfService(s)[variable];
  // Every file a flag or variable names is inside a volume of the service.
  const targets = (s) => (s.volumes ?? []).map((v) =>
    (typeof v === "string" ? v.split(":")[1] : v.target)).filter(Boolean);
  for (const [name, s] of Object.entries(services)) {
    const env = envOfService(s);
    const files = [...textOf(s).matchAll(new RegExp(`--(${fileFlags.join("|")})=["']?(/[^\\s"']+)`, "g"))]
      .map((m) => [`--${m[1]}`, m[2]]);
    for (const e of fileEnv) if (env[e]) files.push([e, env[e]]);
    for (const [what, f] of files) {
      if (!targets(s).some((t) => f === t || f.startsWith(`${stripSlash(t)}/`)) &&
          !/^\/(etc\/ssl|usr)\//.test(f)) {
        problem(file, `service ${name}: ${what} ${f} is in no volume of the service`);
      }
    }
  }
  // With mTLS on the servers (the services with --tls_client_ca), every
  // service that dials them has a CA, a certificate and a key.
  const tlsHosts = new Set();
  for (const [name, s] of Object.entries(services)) {
    if (!/--tls_client_ca=/.test(textOf(s))) continue;
    tlsHosts.add(name);
    const networks = s.networks && !Array.isArray(s.networks) ? s.networks : {};
    for (const n of Object.values(networks)) for (const a of n?.aliases ?? []) tlsHosts.add(a);
  }
  for (const [name, s] of Object.entries(services)) {
    const target = settingIn(s, "address", "THROTTLE_ADDRESS");
    const host = target && targetHost(target);
    if (!host || !tlsHosts.has(host)) continue;
    for (const [flag, variable] of [["tls_ca", "THROTTLE_TLS_CA"], ["tls_cert", "THROTTLE_TLS_CERT"], ["tls_key", "THROTTLE_TLS_KEY"]]) {
      if (settingIn(s, flag, variable) === undefined) {
        problem(file, `service ${name}: ${target} requires a client certificate (mTLS), and the service has no --${flag} or ${variable}`);
      }
    }
  }
  for (const [name, s] of Object.entries(services)) {
    const env = envOfService(s);
    const text = textOf(s);
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

const rel = (f) => path.relative(deployDir, f);
const resolve = (dir) => ({ dir, ...resolveKustomization(dir, loadDocuments, problem, rel) });
const base = resolve(path.join(k8sDir, "base"));
const demo = resolve(path.join(k8sDir, "overlays", "demo"));
for (const r of [base, demo]) checkAllRead(r.dir, r.listed);
for (const f of readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f))) {
  problem(rel(path.join(k8sDir, f)), "in no kustomization (k8s/base, k8s/overlays/demo)");
}
checkLayout(base, demo);
// The demo overlay holds every object of the base, and the Job: all of
// them are checked below.
const docs = demo.docs;
const byKind = (kind) => docs.filter(({ doc }) => doc.kind === kind)
  .map(({ doc }) => doc);
checkDisruptionBudgets(docs);
const compared = [base, demo].map(checkWithKubectl);

for (const { file, index, doc } of docs) {
  const where = `${path.relative(deployDir, file)}#${index}`;
  if (typeof doc !== "object" || !doc.apiVersion || !doc.kind) {
    problem(where, "not a Kubernetes object (apiVersion and kind)");
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
const facts = checkSecurity(docs.filter(({ doc }) => podSpecOf(doc ?? {}))
  .map(({ file, index, doc }) => ({ where: `${path.relative(deployDir, file)}#${index}`, doc })), byKind);
const certManagerDir = path.join(k8sDir, "cert-manager");
if (existsSync(certManagerDir)) checkCertManager(certManagerDir, facts, byKind);
const compose = path.join(deployDir, "compose.yaml");
if (existsSync(compose)) checkCompose(compose);

for (const p of problems) console.error(p);
for (const c of compared) console.log(c);
console.log(`${base.docs.length} objects in the base (${base.generated.length} generated ConfigMaps), ` +
  `${demo.docs.length - base.docs.length} more in the demo overlay` +
  (existsSync(certManagerDir) ? " (and the cert-manager component)" : "") + ": " +
  (problems.length ? `${problems.length} problems` : "OK"));
process.exit(problems.length ? 1 : 0);
