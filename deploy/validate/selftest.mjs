// The checks of the kustomize layout in validate-manifests.mjs, each shown
// to fail: every case copies deploy/ (and the Dockerfile, which
// compose.yaml builds) to a temporary directory, breaks one
// rule there (a text edit that must apply), runs the validator on the copy
// and expects exit status 1 with the problem it names. The unbroken copy
// must pass. Run by `run.sh manifests` after the validator itself.
//   node selftest.mjs [DEPLOY_DIR]   (default: this file's ../)
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const deployDir = path.resolve(process.argv[2] ?? path.join(here, ".."));
const validator = path.join(here, "validate-manifests.mjs");

// Replaces `from` by `to` in FILE (relative to the copy); the edit must
// apply, or the case would test nothing.
function edit(dir, file, from, to) {
  const p = path.join(dir, file);
  const text = readFileSync(p, "utf8");
  if (!text.includes(from)) throw new Error(`${file} has no ${JSON.stringify(from)}`);
  writeFileSync(p, text.replace(from, to));
}
const append = (dir, file, text) => writeFileSync(path.join(dir, file), text, { flag: "a" });

const serverBudget = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: throttle-server
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: throttle
      app.kubernetes.io/component: server
`;

const cases = [
  ["the workers Job in the base", /Job\/throttle-workers is in the base/, (d) => {
    renameSync(path.join(d, "k8s/overlays/demo/workers-job.yaml"), path.join(d, "k8s/base/workers-job.yaml"));
    edit(d, "k8s/base/kustomization.yaml", "  - throttle-ctl.yaml\n", "  - throttle-ctl.yaml\n  - workers-job.yaml\n");
    edit(d, "k8s/overlays/demo/kustomization.yaml", "  - workers-job.yaml\n", "");
  }],
  ["no Job in the demo overlay", /overlays\/demo\/kustomization.yaml: no workers Job/, (d) => {
    edit(d, "k8s/overlays/demo/kustomization.yaml", "  - workers-job.yaml\n", "");
    unlinkSync(path.join(d, "k8s/overlays/demo/workers-job.yaml"));
  }],
  ["the overlay adds more than the Job", /Service\/extra: the demo overlay adds only the workers Job/, (d) => {
    append(d, "k8s/overlays/demo/workers-job.yaml", "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: extra\nspec:\n  selector:\n    app.kubernetes.io/component: server\n  ports:\n    - port: 1\n");
  }],
  ["a budget on the high-available servers", /PodDisruptionBudget throttle-server selects the high-available servers/, (d) => {
    writeFileSync(path.join(d, "k8s/base/server-pdb.yaml"), serverBudget);
    edit(d, "k8s/base/kustomization.yaml", "  - server-service.yaml\n", "  - server-service.yaml\n  - server-pdb.yaml\n");
  }],
  ["etcd's budget as minAvailable: 1", /etcd's budget is .*want maxUnavailable: 1/, (d) => {
    edit(d, "k8s/base/etcd-pdb.yaml", "  maxUnavailable: 1\n", "  minAvailable: 1\n");
  }],
  ["no budget for etcd", /0 PodDisruptionBudgets select the etcd members/, (d) => {
    edit(d, "k8s/base/kustomization.yaml", "  - etcd-pdb.yaml\n", "");
    unlinkSync(path.join(d, "k8s/base/etcd-pdb.yaml"));
  }],
  ["a budget that selects nothing", /PodDisruptionBudget\/throttle-etcd: selects no Deployment or StatefulSet/, (d) => {
    edit(d, "k8s/base/etcd-pdb.yaml", "      app.kubernetes.io/component: etcd\n", "      app.kubernetes.io/component: etc\n");
  }],
  ["a hand-written ConfigMap", /ConfigMap throttle-config is written by hand/, (d) => {
    const data = readFileSync(path.join(d, "k8s/base/throttles.yaml"), "utf8").replace(/^/gm, "    ");
    writeFileSync(path.join(d, "k8s/base/configmap.yaml"),
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: throttle-config\ndata:\n  throttles.yaml: |\n${data}`);
    edit(d, "k8s/base/kustomization.yaml", "  - name: throttle-config\n    files:\n      - throttles.yaml\n", "  - name: throttle-unused\n    literals:\n      - a=b\n");
    edit(d, "k8s/base/kustomization.yaml", "  - server-service.yaml\n", "  - server-service.yaml\n  - configmap.yaml\n");
    unlinkSync(path.join(d, "k8s/base/throttles.yaml"));
  }],
  ["a generated name without its hash", /throttle-config is generated without a name hash/, (d) => {
    edit(d, "k8s/base/kustomization.yaml", "      - throttles.yaml\n    options:\n", "      - throttles.yaml\n    options:\n      disableNameSuffixHash: true\n");
  }],
  ["the Deployment mounts a ConfigMap nobody makes", /ConfigMap throttle-settings does not come from a configMapGenerator/, (d) => {
    edit(d, "k8s/base/server-deployment.yaml", "name: throttle-config\n", "name: throttle-settings\n");
  }],
  ["a generator file outside the kustomization", /file \.\.\/\.\.\/throttles\.yaml is outside k8s\/base/, (d) => {
    edit(d, "k8s/base/kustomization.yaml", "      - throttles.yaml\n", "      - ../../throttles.yaml\n");
  }],
  ["the copy of throttles.yaml out of step", /throttles.yaml differs from/, (d) => {
    edit(d, "k8s/base/throttles.yaml", "max_n: 4\n", "max_n: 5\n");
  }],
  ["a kustomize feature the resolution lacks", /namePrefix: not resolved by deploy\/validate/, (d) => {
    append(d, "k8s/base/kustomization.yaml", "namePrefix: x-\n");
  }],
  ["a file no kustomization reads", /k8s\/base\/stray.yaml: not read by the kustomization.yaml/, (d) => {
    writeFileSync(path.join(d, "k8s/base/stray.yaml"), serverBudget);
  }],
];

const root = mkdtempSync(path.join(os.tmpdir(), "throttle-validate-selftest-"));
let failed = 0;
try {
  const run = (i, name, expect, breakIt) => {
    // deploy/ and the Dockerfile beside it (compose.yaml builds ../).
    const dir = path.join(root, String(i), "deploy");
    cpSync(deployDir, dir, { recursive: true,
      filter: (src) => !/\/(node_modules|demo-certs|\.demo-certs\.[^/]*)$/.test(src) });
    cpSync(path.join(deployDir, "..", "Dockerfile"), path.join(dir, "..", "Dockerfile"));
    if (breakIt) breakIt(dir);
    const r = spawnSync(process.execPath, [validator, dir], { encoding: "utf8" });
    const ok = expect ? r.status === 1 && expect.test(r.stderr) : r.status === 0;
    if (!ok) {
      failed++;
      console.error(`selftest: ${name}: exit ${r.status}, expected ${expect ? `1 and ${expect}` : 0}\n${r.stderr}`);
    } else {
      console.log(`selftest: ${name}: ${expect ? `found (${r.stderr.split("\n").find((l) => expect.test(l)).slice(0, 160)})` : "passes"}`);
    }
    rmSync(path.dirname(dir), { recursive: true, force: true });
  };
  cases.unshift(["the copy unbroken", null, null]);
  for (const [i, [name, expect, breakIt]] of cases.entries()) run(i, name, expect, breakIt);
} finally {
  rmSync(root, { recursive: true, force: true });
}
console.log(`selftest: ${cases.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
