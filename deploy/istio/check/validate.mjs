// Validates Kubernetes manifests against the published schemas: core/apps kinds with
// `kubernetes-models`, Istio kinds with `@kubernetes-models/istio` (generated from Istio 1.29's
// CRDs). Usage:  node validate.mjs FILE...   (after `npm ci` in this directory)
//
// Prints one JSON line per document: {file, document, apiVersion, kind, name, errors}. A kind
// without a known schema is an error too, so nothing passes unchecked. Exit code 1 when any
// document has errors, 2 on a usage or parse problem.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

function modulePath(apiVersion, kind) {
  if (!apiVersion.includes("/")) return `kubernetes-models/${apiVersion}/${kind}`; // core group
  if (apiVersion.split("/")[0].endsWith("istio.io")) return `@kubernetes-models/istio/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

async function validateDocument(doc) {
  const { apiVersion, kind } = doc ?? {};
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return ["document has no apiVersion/kind"];
  }
  let Model;
  try {
    Model = (await import(modulePath(apiVersion, kind)))[kind];
  } catch {
    Model = undefined;
  }
  if (typeof Model !== "function") return [`no schema known for ${apiVersion} ${kind}`];
  try {
    new Model(doc).validate();
    return [];
  } catch (error) {
    // ajv's message lists every violation, separated by ", ".
    return String(error.message).split(/, (?=data)/);
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE...");
  process.exit(2);
}
let failed = false;
for (const file of files) {
  const documents = parseAllDocuments(readFileSync(file, "utf8"));
  for (const [index, parsed] of documents.entries()) {
    if (parsed.errors.length > 0) {
      console.error(`${file}: document ${index}: ${parsed.errors[0].message}`);
      process.exit(2);
    }
    const doc = parsed.toJS();
    if (doc === null || doc === undefined) continue; // empty document (e.g. a trailing ---)
    const errors = await validateDocument(doc);
    failed ||= errors.length > 0;
    console.log(JSON.stringify({
      file, document: index, apiVersion: doc.apiVersion, kind: doc.kind,
      name: doc.metadata?.name, errors,
    }));
  }
}
process.exit(failed ? 1 : 0);
