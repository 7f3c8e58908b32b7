// Bundles the widgets' front-end code (echarts from npm included) into
// aiser_jupyter/static/, which ships inside the wheel: users need no node.
import { copyFile, mkdir } from "node:fs/promises";
import { build } from "esbuild";

const out = new URL("../aiser_jupyter/static/", import.meta.url).pathname;
await mkdir(out, { recursive: true });
const common = { bundle: true, minify: true, target: "es2020", legalComments: "eof", logLevel: "warning" };
await Promise.all([
  ...["chart", "table", "schema"].map((name) =>
    build({ ...common, entryPoints: [`src/${name}.js`], format: "esm", outfile: `${out}${name}.js` }),
  ),
  build({ ...common, entryPoints: ["src/standalone.js"], format: "iife", outfile: `${out}standalone.js` }),
  copyFile("src/widgets.css", `${out}widgets.css`),
  copyFile("node_modules/echarts/LICENSE", `${out}ECHARTS-LICENSE`),
  copyFile("node_modules/echarts/NOTICE", `${out}ECHARTS-NOTICE`),
]);
