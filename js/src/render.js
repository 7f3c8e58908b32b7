// ECharts with only the parts aiser's options use, and the drawing shared by the
// widget (chart.js) and the static pages (standalone.js).
import * as echarts from "echarts/core";
import { BarChart, HeatmapChart, LineChart, PieChart, ScatterChart } from "echarts/charts";
import {
  DatasetComponent,
  DataZoomComponent,
  GraphicComponent,
  GridComponent,
  LegendComponent,
  TitleComponent,
  ToolboxComponent,
  TooltipComponent,
  VisualMapComponent,
} from "echarts/components";
import { CanvasRenderer, SVGRenderer } from "echarts/renderers";
import { axesLayout, axisFormatters, merged } from "./axes.js";

echarts.use([
  BarChart, HeatmapChart, LineChart, PieChart, ScatterChart,
  DatasetComponent, DataZoomComponent, GraphicComponent, GridComponent, LegendComponent,
  TitleComponent, ToolboxComponent, TooltipComponent, VisualMapComponent,
  CanvasRenderer, SVGRenderer,
]);

const SVG_ICON = "path://M4 4h16v16H4zM8 15l3-4 2 3 2-2 3 3";

// JupyterLab and Voila mark the body with data-jp-theme-light; VS Code with a class;
// a plain page follows the system setting.
export function isDark() {
  const body = document.body;
  if (body.dataset.jpThemeLight !== undefined) return body.dataset.jpThemeLight === "false";
  if (body.classList.contains("vscode-dark") || body.classList.contains("vscode-high-contrast")) {
    return true;
  }
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
}

function themeName() {
  return isDark() ? "dark" : "default";
}

// Re-theme a drawn chart (ref.current) whenever the page switches light/dark.
export function followTheme(box, ref) {
  let theme = themeName();
  const observer = new MutationObserver(() => {
    if (themeName() !== theme) {
      theme = themeName();
      ref.current?.setTheme(theme);
      box.dataset.theme = theme;
    }
  });
  observer.observe(document.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light"] });
  return () => observer.disconnect();
}

function plainOption(option) {
  const { aiser, ...rest } = option; // aiser's own notes (KPI details) are not ECharts'
  return { backgroundColor: "transparent", ...rest };
}

// The option with its number formatters and its axes laid out for a width×height chart.
function sized(option, width, height) {
  return merged(merged(option, axisFormatters(option)), axesLayout(option, width, height));
}

export function svgString(option, width, height, dark) {
  const holder = document.createElement("div");
  const chart = echarts.init(holder, dark ? "dark" : null, { renderer: "svg", ssr: true, width, height });
  chart.setOption({ ...plainOption(sized(option, width, height)), animation: false });
  const text = chart.renderToSVGString();
  chart.dispose();
  return text;
}

export function imageDataUrl(chart, option, format) {
  const dark = isDark();
  if (format === "svg") {
    const text = svgString(option, chart.getWidth(), chart.getHeight(), dark);
    return `data:image/svg+xml;base64,${btoa(unescape(encodeURIComponent(text)))}`;
  }
  return chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: dark ? "#111" : "#fff" });
}

function download(url, name) {
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
}

function withTools(option, chartRef) {
  return {
    ...plainOption(option),
    toolbox: {
      right: 8,
      feature: {
        saveAsImage: { type: "png", title: "PNG", pixelRatio: 2, name: "chart" },
        mySvg: {
          show: true,
          title: "SVG",
          icon: SVG_ICON,
          onclick: () => download(imageDataUrl(chartRef.current, option, "svg"), "chart.svg"),
        },
      },
    },
  };
}

// Draw `option` into `box`; returns the ECharts instance (ref.current follows redraws).
export function draw(box, option, ref = {}) {
  const chart = echarts.init(box, themeName(), { renderer: "canvas" });
  box.dataset.theme = themeName();
  ref.current = chart;
  box.aiserChart = chart; // for tests and the browser console
  chart.setOption(withTools(sized(option, chart.getWidth(), chart.getHeight()), ref));
  return chart;
}

// After the box changed size: the axes laid out for the new size, drawn once (the lazy
// option update is taken up by the resize).
export function fit(chart) {
  const box = chart.getDom();
  const [width, height] = [box.clientWidth, box.clientHeight];
  if (!width || !height || (width === chart.getWidth() && height === chart.getHeight())) return;
  const layout = axesLayout(chart.getOption(), width, height);
  if (Object.keys(layout).length) chart.setOption(layout, { lazyUpdate: true });
  chart.resize();
}

// After the data changed (a dashboard filter): the axes laid out again for the new labels.
export function relayout(chart) {
  const layout = axesLayout(chart.getOption(), chart.getWidth(), chart.getHeight());
  if (Object.keys(layout).length) chart.setOption(layout);
}

export function clickSelection(params) {
  return {
    series: params.seriesName ?? null,
    name: params.name ?? null,
    value: params.value ?? null,
    index: params.dataIndex ?? null,
  };
}
