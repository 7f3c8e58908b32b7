#!/usr/bin/env node
// Cube's own SQL for a list of REST queries: the oracle of tests/test_cube_parity.py.
//
//   node oracle.js QUERIES.json MODEL_PATH... [--now NOW_ISO]
//
// Reads every .yml/.yaml file of the MODEL_PATHs (files or folders) as one model, compiles them with @cubejs-backend/schema-compiler
// (classic planner, CUBEJS_TESSERACT_SQL_PLANNER=false), normalizes each query as Cube's REST
// API does (@cubejs-backend/api-gateway's normalizeQuery: default limit, order, relative date
// ranges resolved at NOW_ISO when given) and prints one JSON array on stdout: per query
// {sql, params} (and {totalSql, totalParams} when it asks for `total`), or {error}. A model
// Cube rejects prints {modelError}.
//
// Cube's native module (Rust) is not needed for plain YAML: only its Jinja engine is made from
// it, so a stand-in native instance that has no Jinja is passed to prepareCompiler.
'use strict';

process.env.CUBEJS_TESSERACT_SQL_PLANNER = 'false';
process.env.CUBEJS_TRANSPILATION_NATIVE = 'false';

const fs = require('fs');
const path = require('path');

console.log = console.error; // Cube's warnings go to stderr: stdout is the JSON answer

function anchorClock(iso) {
  // Relative date ranges ("last 7 days") resolve against this instant, as ours do with `now`.
  const fixed = Date.parse(iso);
  const RealDate = Date;
  class AnchoredDate extends RealDate {
    constructor(...args) {
      super(...(args.length ? args : [fixed]));
    }
    static now() {
      return fixed;
    }
  }
  global.Date = AnchoredDate;
}

const noJinja = {
  newJinjaEngine: () => null,
  loadPythonContext: () => {
    throw new Error('globals.py needs the native module');
  },
};

function modelFiles(paths) {
  return paths.flatMap((given) => {
    const names = fs.statSync(given).isDirectory()
      ? fs.readdirSync(given).sort().map((name) => path.join(given, name))
      : [given];
    return names
      .filter((name) => /\.ya?ml$/.test(name))
      .map((name) => ({ fileName: path.basename(name), content: fs.readFileSync(name, 'utf8') }));
  });
}

async function compileModel(paths) {
  const { prepareCompiler } = require('@cubejs-backend/schema-compiler');
  const files = modelFiles(paths);
  const repo = { localPath: () => process.cwd(), dataSchemaFiles: async () => files };
  const compilers = prepareCompiler(repo, { nativeInstance: noJinja, standalone: true });
  await compilers.compiler.compile();
  if (compilers.compiler.workerPool) await compilers.compiler.workerPool.terminate();
  return compilers;
}

function sqlFor(compilers, query) {
  const { PostgresQuery } = require('@cubejs-backend/schema-compiler');
  const { normalizeQuery, remapToQueryAdapterFormat } = require('@cubejs-backend/api-gateway/dist/src/query');
  const normalized = normalizeQuery(JSON.parse(JSON.stringify(query)), false);
  const build = (q) => new PostgresQuery(compilers, remapToQueryAdapterFormat(q)).buildSqlAndParams();
  const [sql, params] = build(normalized);
  const out = { sql, params };
  if (normalized.total) {
    // As the gateway does: the same query without order, limit and offset, counted.
    const total = { ...JSON.parse(JSON.stringify(normalized)), totalQuery: true, limit: null, rowLimit: null, offset: null };
    delete total.order;
    [out.totalSql, out.totalParams] = build(total);
  }
  return out;
}

async function main() {
  const args = process.argv.slice(2);
  const at = args.indexOf('--now');
  if (at >= 0) anchorClock(args.splice(at, 2)[1]);
  const [queriesPath, ...modelPaths] = args;
  const queries = JSON.parse(fs.readFileSync(queriesPath, 'utf8'));
  let compilers;
  try {
    compilers = await compileModel(modelPaths);
  } catch (error) {
    process.stdout.write(JSON.stringify({ modelError: String(error.message || error) }));
    return;
  }
  const results = queries.map((query) => {
    try {
      return sqlFor(compilers, query);
    } catch (error) {
      return { error: String(error.message || error) };
    }
  });
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
