// Axes that read at any size. The kernel sends JSON, so what needs a function or the
// chart's size is decided here: compact numbers on value axes ($1.5M, 12k, 45%) from the
// option's `aiser.axisFormats` hint, full numbers in tooltips, fewer ticks on short value
// axes, category labels rotated and cut with an ellipsis when they do not fit (the full
// name shows on hover), and axis names cut to their axis. ECharts keeps labels and names
// inside the canvas (grid outerBounds) and hides any tick label that would still overlap.
import { format as echartsFormat } from "echarts/core";

const FONT = "12px sans-serif"; // ECharts' axis label font
const LINE = 14; // the label line height charts/echarts.py sets
const UNITS = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "k"]];
const RAD = Math.PI / 180;

let measurer;
function textWidth(text) {
  measurer ??= document.createElement("canvas").getContext("2d");
  measurer.font = FONT;
  return measurer.measureText(String(text)).width;
}

function dress(body, negative, format) {
  const money = format === "currency" ? `$${body}` : body;
  return `${negative ? "-" : ""}${money}${format === "percent" ? "%" : ""}`;
}

// A value, short: 1250000 → "1.25M", with "$" or "%" when the format says so. Axis ticks
// are multiples of a round step, so six significant digits write them exactly; other
// values (a colour scale's ends) keep three.
export function compact(value, format, digits = 6) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value ?? "");
  const size = Math.abs(value);
  const [scale, suffix] = UNITS.find(([at]) => size >= at) ?? [1, ""];
  const body = `${parseFloat((size / scale).toPrecision(digits))}${suffix}`;
  return dress(body, value < 0, format);
}

// A value in full, for tooltips: "$1,234,567.89", "12.5%", "1,234.5678".
export function full(value, format) {
  if (typeof value !== "number" || !Number.isFinite(value)) return value == null ? "–" : String(value);
  const cents = format === "currency";
  const body = Math.abs(value).toLocaleString("en-US", {
    minimumFractionDigits: cents ? 2 : 0,
    maximumFractionDigits: cents ? 2 : 6,
  });
  return dress(body, value < 0, format);
}

const list = (axes) => (axes == null ? [] : Array.isArray(axes) ? axes : [axes]);
const clamp = (value, low, high) => Math.max(low, Math.min(high, value));
const widest = (labels) => labels.reduce((most, label) => Math.max(most, textWidth(label)), 0);
const categoryNames = (axis) => (axis.data ?? []).map((item) => String(item?.value ?? item));

// Category labels beside a vertical axis take at most this much of the chart's width.
const labelLimit = (width) => clamp(0.4 * width, 48, 240);

// Room a vertical axis's labels take beside the plot, before ECharts lays it out.
function sideRoom(axis, width) {
  if (axis.type === "category") return Math.min(widest(categoryNames(axis)), labelLimit(width));
  return 44; // a compact tick: "$1.25M"
}

// How `axis` should lay out in a plot about `length` px long (its own direction).
function fitAxis(axis, horizontal, length, size) {
  const patch = { nameTruncate: { maxWidth: Math.max(length, 24), ellipsis: "…" } };
  if (axis.type === "value") {
    const room = horizontal ? 64 : 36;
    patch.splitNumber = clamp(Math.floor(length / room), 2, 5);
  } else if (axis.type === "time") {
    patch.splitNumber = clamp(Math.floor(length / 56), 2, 6);
  } else if (axis.type === "category") {
    patch.tooltip = { show: true }; // the whole name when a label is cut
    patch.axisLabel = horizontal ? bottomLabels(axis, length, size) : sideLabels(axis, size);
  }
  return patch;
}

// Category labels under a horizontal axis: level when they fit their band, else turned
// 45° (or 90° when bands are narrower than two lines) and cut to a share of the chart.
function bottomLabels(axis, length, size) {
  const names = categoryNames(axis);
  const band = length / Math.max(names.length, 1);
  const longest = widest(names);
  // level and every one shown (ECharts' own guess pads labels by 30% and drops some)
  if (longest + 8 <= band) return { rotate: 0, interval: 0, width: longest + 12, overflow: "none" };
  const rotate = band >= 1.6 * LINE ? 45 : 90; // turned lines stay more than a line apart
  const drop = 0.3 * size.height; // the labels' share of the height
  const room = rotate === 90 ? drop : Math.min(drop, size.side + band / 2) / Math.sin(45 * RAD);
  // zrender cuts a label that is exactly as wide as its box, hence the slack
  const width = longest <= room ? longest + 12 : Math.max(room, 40);
  return { rotate, interval: "auto", width, overflow: "truncate", ellipsis: "…" };
}

// Category labels beside a vertical axis: level, cut at labelLimit.
function sideLabels(axis, size) {
  const width = Math.min(widest(categoryNames(axis)) + 12, labelLimit(size.width));
  return { width, overflow: "truncate", ellipsis: "…" };
}

// The size-dependent part of a cartesian option's axes, for a `width`×`height` chart:
// { xAxis: [...], yAxis: [...] } to merge into the option (index by index).
export function axesLayout(option, width, height) {
  const xs = list(option.xAxis);
  const ys = list(option.yAxis);
  if (!xs.length || !ys.length) return {};
  const side = ys.reduce((room, axis) => Math.max(room, sideRoom(axis, width)), 0);
  const named = (axes) => (axes.some((axis) => axis.name) ? LINE + 10 : 0);
  const bottom = xs[0].type === "category" ? 0.3 * height : LINE + 8;
  const plotWidth = Math.max(width - side - named(ys) - 40, 24);
  const grid = list(option.grid)[0] ?? {};
  const edges = (grid.top ?? 40) + (grid.outerBounds?.bottom ?? 0);
  const plotHeight = Math.max(height - edges - bottom - named(xs) - 16, 24);
  // what the first turned label may reach over on its left: the y name and the narrowest ticks
  const size = { width, height, side: 24 + named(ys) };
  return {
    xAxis: xs.map((axis) => fitAxis(axis, true, plotWidth, size)),
    yAxis: ys.map((axis) => fitAxis(axis, false, plotHeight, size)),
  };
}

// Formatters for what the kernel could only describe: compact value-axis ticks, full
// values in tooltips (a scatter's point shows both of its coordinates).
export function axisFormatters(option) {
  const formats = option.aiser?.axisFormats ?? {};
  const patch = {};
  for (const dim of ["xAxis", "yAxis"]) {
    const axes = list(option[dim]);
    if (!axes.some((axis) => axis.type === "value")) continue;
    patch[dim] = axes.map((axis) =>
      axis.type === "value" && !axis.axisLabel?.formatter
        ? { axisLabel: { formatter: (value) => compact(Number(value), formats[dim]) } }
        : {},
    );
  }
  if (option.visualMap && !list(option.visualMap)[0].formatter) {
    patch.visualMap = { formatter: (value) => compact(value, formats.visualMap, 3) };
  }
  const tooltip = option.tooltip;
  if (!tooltip || tooltip.formatter || tooltip.valueFormatter) return patch;
  const valueDim = ["yAxis", "xAxis"].find((dim) => list(option[dim])[0]?.type === "value");
  if (list(option.series)[0]?.type === "scatter") {
    const name = (dim) => echartsFormat.encodeHTML(String(list(option[dim])[0]?.name ?? dim[0]));
    patch.tooltip = {
      formatter: (point) => {
        const [x, y, count] = Array.isArray(point.value) ? point.value : point.value?.value ?? [];
        const rows = [
          `${point.marker}${echartsFormat.encodeHTML(point.seriesName ?? "")}`,
          `${name("xAxis")}: <b>${full(x, formats.xAxis)}</b>`,
          `${name("yAxis")}: <b>${full(y, formats.yAxis)}</b>`,
        ];
        if (count !== undefined) rows.push(`points: <b>${full(count)}</b>`);
        return rows.join("<br>");
      },
    };
  } else if (valueDim) {
    patch.tooltip = { valueFormatter: (value) => full(value, formats[valueDim]) };
  }
  return patch;
}

// `patch` merged into `option` one level down: axes index by index, objects key by key.
export function merged(option, patch) {
  const out = { ...option };
  for (const [key, value] of Object.entries(patch)) {
    if (Array.isArray(value)) {
      const base = list(option[key]);
      out[key] = base.map((item, index) => deepMerge(item, value[index] ?? {}));
    } else {
      out[key] = deepMerge(option[key] ?? {}, value);
    }
  }
  return out;
}

function deepMerge(base, extra) {
  const out = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const plain = value && typeof value === "object" && !Array.isArray(value);
    out[key] = plain && base[key] && typeof base[key] === "object" ? { ...base[key], ...value } : value;
  }
  return out;
}
