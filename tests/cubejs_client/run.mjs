// Runs Cube client calls against an API with the official @cubejs-client/core, unchanged.
// Usage: node run.mjs '<json>' where json = {apiUrl, tokens: {name: token}, calls: [...]};
// each call is {name, kind: "load"|"sql"|"meta", token, query?}. Prints one JSON object:
// {name: {queryType, rawData: [per query], annotation, chartPivot, tablePivot, seriesNames},
// {sql}, {cubes, title}, or {error, status} when the client raised}.
import cube from '@cubejs-client/core';

const config = JSON.parse(process.argv[2]);
const out = {};

for (const call of config.calls) {
  const api = cube(config.tokens[call.token], { apiUrl: config.apiUrl });
  try {
    if (call.kind === 'load') {
      const resultSet = await api.load(call.query);
      const parts = resultSet.decompose();
      out[call.name] = {
        queryType: resultSet.queryType,
        rawData: parts.map((part) => part.rawData()),
        annotation: parts.map((part) => part.annotation()),
        chartPivot: resultSet.chartPivot(),
        tablePivot: resultSet.tablePivot(),
        seriesNames: resultSet.seriesNames().map((s) => s.key),
      };
    } else if (call.kind === 'sql') {
      const sql = await api.sql(call.query);
      out[call.name] = { sql: sql.sql() };
    } else if (call.kind === 'meta') {
      const meta = await api.meta();
      out[call.name] = {
        cubes: meta.cubes.map((c) => c.name),
        title: meta.resolveMember(call.member, 'measures').title,
      };
    }
  } catch (error) {
    out[call.name] = { error: error.message, status: error.status ?? null };
  }
}

console.log(JSON.stringify(out));
