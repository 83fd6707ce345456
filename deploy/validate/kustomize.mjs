// Resolves a kustomization as kustomize does, for the features deploy/k8s
// uses, so that validate-manifests.mjs checks what `kubectl apply -k`
// would apply, with no kustomize binary: Debian 12 has none (its
// kubernetes-client is kubectl 1.20, whose kustomize 2.0 has no
// components and no directories in `resources`), nor has the npm
// registry. Where a kubectl with kustomize is on the PATH (the machines
// here have one), kubectlKustomize() renders the same directory with it,
// and validate-manifests.mjs compares the two object by object.
//
// Supported, everything else in a kustomization is reported as a problem
// (the validator would otherwise check something kustomize does not
// apply):
//   - resources: YAML files, and directories with a kustomization.yaml
//     (resolved recursively; a directory that contains one already being
//     resolved is a cycle, as kustomize says);
//   - configMapGenerator with files (KEY=FILE or FILE, inside the
//     kustomization's directory: kustomize's default load restrictor) and
//     literals, options.labels/annotations/disableNameSuffixHash, and
//     generatorOptions with the same: the ConfigMap is named NAME-HASH with
//     kustomize's hash of its content (configMapHash), and that name is
//     written wherever a pod spec refers to NAME (volumes, projected
//     volumes, env valueFrom, envFrom);
//   - components: checked to exist (deploy/k8s/cert-manager is validated
//     on its own).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";

const supportedKeys = new Set(["apiVersion", "kind", "resources",
  "configMapGenerator", "generatorOptions", "components"]);
const generatorKeys = new Set(["name", "files", "literals", "options"]);
const optionKeys = new Set(["labels", "annotations", "disableNameSuffixHash"]);

// kustomize's name suffix of a generated ConfigMap (api/hasher): the
// SHA-256 of Go's json.Marshal of {"data", "kind", "name": ""} (keys in
// order, <, > and & escaped as Go does), its first 10 hex digits with
// 0, 1, 3, a, e replaced so that the suffix is no word or number.
export function configMapHash(data) {
  const sorted = Object.fromEntries(Object.keys(data).sort().map((k) => [k, data[k]]));
  const json = JSON.stringify({ data: sorted, kind: "ConfigMap", name: "" })
    .replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
  const swap = { 0: "g", 1: "h", 3: "k", a: "m", e: "t" };
  return createHash("sha256").update(json).digest("hex").slice(0, 10)
    .replace(/[013ae]/g, (c) => swap[c]);
}

function podSpecOf(doc) {
  if (doc.kind === "Pod") return doc.spec;
  if (doc.kind === "CronJob") return doc.spec?.jobTemplate?.spec?.template?.spec;
  return doc.spec?.template?.spec;
}

// Writes the generated names (`renamed`: NAME -> NAME-HASH) into every
// reference of a pod spec to a ConfigMap.
function renameConfigMapRefs(doc, renamed) {
  const pod = podSpecOf(doc);
  if (!pod) return;
  const rename = (ref) => {
    if (ref?.name !== undefined && renamed.has(ref.name)) ref.name = renamed.get(ref.name);
  };
  for (const v of pod.volumes ?? []) {
    rename(v.configMap);
    for (const s of v.projected?.sources ?? []) rename(s.configMap);
  }
  for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
    for (const e of c.env ?? []) rename(e.valueFrom?.configMapKeyRef);
    for (const e of c.envFrom ?? []) rename(e.configMapRef);
  }
}

const inside = (dir, p) => p === dir || p.startsWith(dir + path.sep);

// Resolves DIR/kustomization.yaml. Returns {docs: [{file, index, doc}],
// generated: [{name, generatedName, where, keys}], listed: Set of the
// files it reads}. `loadDocuments(file)` parses a YAML file as
// validate-manifests.mjs does; `problem(where, what)` records a problem.
export function resolveKustomization(dir, loadDocuments, problem, rel, stack = []) {
  const file = path.join(dir, "kustomization.yaml");
  const where = rel(file);
  const out = { docs: [], generated: [], listed: new Set([file]) };
  if (!existsSync(file)) {
    problem(rel(dir), "no kustomization.yaml");
    return out;
  }
  const k = parseYaml(readFileSync(file, "utf8"), { uniqueKeys: true }) ?? {};
  if (k.kind !== "Kustomization" || k.apiVersion !== "kustomize.config.k8s.io/v1beta1") {
    problem(where, "not a Kustomization of kustomize.config.k8s.io/v1beta1");
  }
  for (const key of Object.keys(k)) {
    if (!supportedKeys.has(key)) {
      problem(where, `${key}: not resolved by deploy/validate (supported: ${[...supportedKeys].join(", ")}); extend kustomize.mjs first`);
    }
  }
  for (const r of k.resources ?? []) {
    const p = path.resolve(dir, r);
    if (!existsSync(p)) {
      problem(where, `resource ${r} does not exist`);
    } else if (statSync(p).isDirectory()) {
      if ([...stack, dir].some((root) => inside(p, root))) {
        problem(where, `resource ${r}: a cycle (${rel(p)} contains a kustomization being resolved; kustomize refuses it)`);
        continue;
      }
      const sub = resolveKustomization(p, loadDocuments, problem, rel, [...stack, dir]);
      out.docs.push(...sub.docs);
      out.generated.push(...sub.generated);
    } else {
      out.listed.add(p);
      out.docs.push(...loadDocuments(p));
    }
  }
  for (const c of k.components ?? []) {
    if (!existsSync(path.join(dir, c, "kustomization.yaml"))) {
      problem(where, `component ${c} has no kustomization.yaml`);
    }
  }
  const common = k.generatorOptions ?? {};
  for (const key of Object.keys(common)) {
    if (!optionKeys.has(key)) problem(where, `generatorOptions.${key}: not supported here`);
  }
  const renamed = new Map();
  (k.configMapGenerator ?? []).forEach((g, i) => {
    const at = `${where} configMapGenerator[${i}] ${g.name}`;
    for (const key of Object.keys(g)) {
      if (!generatorKeys.has(key)) problem(at, `${key}: not supported here`);
    }
    for (const key of Object.keys(g.options ?? {})) {
      if (!optionKeys.has(key)) problem(at, `options.${key}: not supported here`);
    }
    const data = {};
    const put = (key, value) => {
      if (key in data) problem(at, `key ${key} twice`);
      data[key] = value;
    };
    for (const f of g.files ?? []) {
      const [key, source] = f.includes("=") ? f.split(/=(.*)/s) : [path.basename(f), f];
      const p = path.resolve(dir, source);
      if (!inside(dir, p)) {
        problem(at, `file ${source} is outside ${rel(dir)}: kustomize refuses it (load restrictor)`);
      } else if (!existsSync(p)) {
        problem(at, `file ${source} does not exist`);
      } else {
        out.listed.add(p);
        put(key, readFileSync(p, "utf8"));
      }
    }
    for (const l of g.literals ?? []) {
      const [key, value] = l.split(/=(.*)/s);
      put(key, value ?? "");
    }
    const labels = { ...common.labels, ...g.options?.labels };
    const annotations = { ...common.annotations, ...g.options?.annotations };
    const noHash = g.options?.disableNameSuffixHash ?? common.disableNameSuffixHash ?? false;
    const generatedName = noHash ? g.name : `${g.name}-${configMapHash(data)}`;
    const metadata = { name: generatedName };
    if (Object.keys(labels).length) metadata.labels = labels;
    if (Object.keys(annotations).length) metadata.annotations = annotations;
    renamed.set(g.name, generatedName);
    out.generated.push({ name: g.name, generatedName, where: at, keys: Object.keys(data) });
    out.docs.push({ file, index: `configMapGenerator[${i}]`,
      doc: { apiVersion: "v1", kind: "ConfigMap", metadata, data } });
  });
  for (const { doc } of out.docs) renameConfigMapRefs(doc, renamed);
  return out;
}

// `kubectl kustomize DIR`: {docs} (the objects), or {unavailable: why}
// when there is no kubectl with kustomize. A kubectl that fails on DIR is
// a problem of DIR: {error}.
export function kubectlKustomize(dir) {
  const run = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8",
    maxBuffer: 64 << 20 });
  if (run.error) return { unavailable: `kubectl: ${run.error.code ?? run.error.message}` };
  if (run.status !== 0) {
    if (/unknown command/.test(run.stderr)) return { unavailable: "kubectl has no kustomize" };
    return { error: run.stderr.trim().split("\n").pop() };
  }
  return { docs: parseAllDocuments(run.stdout).map((d) => d.toJS()).filter(Boolean) };
}

// The first place where two parsed objects differ ("" when equal).
export function firstDifference(a, b, at = "") {
  if (a === b) return "";
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null ||
      Array.isArray(a) !== Array.isArray(b)) {
    return `${at || "."}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    const d = firstDifference(a[key], b[key], Array.isArray(a) ? `${at}[${key}]` : `${at}.${key}`);
    if (d) return d;
  }
  return "";
}
