// The exported dashboard's filters, in the browser: keep the embedded rows that pass the
// filters, add them back up to each item's own dimensions, and redraw. No network.
(() => {
  const data = JSON.parse(document.getElementById("aiser-dashboard-data").textContent);
  const root = document.getElementById("aiser-dashboard");
  const state = data.filters.map((f) =>
    f.kind === "date" ? { start: f.start, end: f.end } : { selected: f.selected.map(String) },
  );
  const cards = [...root.querySelectorAll(".aiser-card")];

  const compare = (a, b) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);

  function format(value, kind) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (typeof value !== "number") return String(value).replace(/T00:00:00$/, "");
    const cents = kind === "currency" || !Number.isInteger(value);
    const text = value.toLocaleString("en-US", {
      minimumFractionDigits: cents ? 2 : 0,
      maximumFractionDigits: cents ? 2 : 0,
    });
    return kind === "currency" ? `$${text}` : kind === "percent" ? `${text}%` : text;
  }

  function passes(live, row) {
    for (const [index, member] of Object.entries(live.filterColumns)) {
      const filter = data.filters[index];
      const chosen = state[index];
      const value = row[live.columns.indexOf(member)];
      if (filter.kind === "date") {
        const day = value === null ? "" : String(value).slice(0, 10);
        if ((chosen.start && day < chosen.start) || (chosen.end && day > chosen.end)) return false;
      } else if (chosen.selected.length && !chosen.selected.includes(String(value))) {
        return false;
      }
    }
    return true;
  }

  // The rows that pass, summed (or min/max-ed) back to the item's own dimensions.
  function aggregate(live) {
    const at = Object.fromEntries(live.columns.map((c, i) => [c, i]));
    const groups = new Map();
    for (const row of live.rows) {
      if (!passes(live, row)) continue;
      const key = JSON.stringify(live.dims.map((d) => row[at[d]]));
      let group = groups.get(key);
      if (!group) {
        group = Object.fromEntries(live.dims.map((d) => [d, row[at[d]]]));
        groups.set(key, group);
      }
      for (const [measure, how] of Object.entries(live.measures)) {
        const value = row[at[measure]];
        if (value === null) continue;
        const old = group[measure];
        group[measure] =
          old === undefined ? value : how === "min" ? Math.min(old, value)
            : how === "max" ? Math.max(old, value) : old + value;
      }
    }
    let rows = [...groups.values()];
    for (const [column, descending] of [...live.order].reverse()) {
      rows.sort((a, b) => compare(a[column] ?? null, b[column] ?? null) * (descending ? -1 : 1));
    }
    if (live.limit) rows = rows.slice(0, live.limit);
    return rows;
  }

  const unique = (values) => [...new Set(values)];

  // The new series (and category axis) of a chart, shaped as charts/echarts.py shapes them.
  function rebind(live, option, rows) {
    const name = (m) => live.names[m] ?? m;
    if (live.kind === "pie") {
      const slices = rows.map((r) => ({ name: String(r[live.x]), value: r[live.y[0]] ?? null }));
      return { series: [{ ...option.series[0], data: slices }] };
    }
    if (live.kind === "line" || live.kind === "area") {
      const keys = live.series ? unique(rows.map((r) => r[live.series])) : [null];
      const series = [];
      for (const key of keys) {
        const part = rows.filter((r) => key === null || r[live.series] === key);
        part.sort((a, b) => compare(a[live.x], b[live.x]));
        for (const m of live.y) {
          const label = key === null ? name(m) : live.y.length === 1 ? String(key) : `${key} · ${name(m)}`;
          const line = { type: "line", name: label, data: part.map((r) => [r[live.x], r[m] ?? null]) };
          line.showSymbol = part.length <= 100;
          if (live.kind === "area") Object.assign(line, { stack: "total", areaStyle: {} });
          series.push(line);
        }
      }
      return { series };
    }
    let categories = unique(rows.map((r) => String(r[live.x])));
    if (!live.order.length && live.kind === "bar") {
      const before = option.xAxis.data.filter((c) => categories.includes(c));
      categories = [...before, ...categories.filter((c) => !before.includes(c))];
    }
    const columns = live.series ? unique(rows.map((r) => String(r[live.series]))) : live.y;
    const table = categories.map((c) => {
      const mine = rows.filter((r) => String(r[live.x]) === c);
      const values = columns.map((col) => {
        const hits = live.series ? mine.filter((r) => String(r[live.series]) === col) : mine;
        const measure = live.series ? live.y[0] : col;
        return hits.length ? hits.reduce((s, r) => s + (r[measure] ?? 0), 0) : null;
      });
      return { category: c, values };
    });
    if (live.kind === "hbar") {
      const total = (t) => t.values.reduce((s, v) => s + (v ?? 0), 0);
      table.sort((a, b) => total(b) - total(a));
    }
    const axis = { data: table.map((t) => t.category) };
    const series = columns.map((col, j) => ({
      type: "bar",
      name: live.series ? col : name(col),
      data: table.map((t) => t.values[j]),
    }));
    return live.kind === "hbar" ? { yAxis: axis, series } : { xAxis: axis, series };
  }

  const escape = (text) =>
    text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  const tableBody = (live, rows) =>
    rows.map((r) => `<tr>${live.shown
      .map((c) => `<td>${escape(format(r[c] ?? null, live.formats[c]))}</td>`).join("")}</tr>`)
      .join("");

  function redraw() {
    data.items.forEach((item, index) => {
      const live = item.live;
      if (!live) return;
      const card = cards[index];
      const rows = aggregate(live);
      if (live.kind === "kpi") {
        const measure = Object.keys(live.measures)[0];
        card.querySelector(".aiser-kpi-value").textContent = format(
          rows.length ? rows[0][measure] ?? null : null, live.formats[measure]);
      } else if (live.kind === "table") {
        card.querySelector("tbody").innerHTML = tableBody(live, rows);
      } else {
        const chart = card.querySelector(".aiser-chart").aiserChart;
        chart.setOption(rebind(live, item.option, rows), { replaceMerge: ["series"] });
        window.aiserCharts.relayout(chart); // new category names may need turning or cutting
      }
    });
  }

  function choose(index, values) {
    state[index].selected = values;
    const select = root.querySelector(`select[data-filter="${index}"]`);
    for (const option of select.options) option.selected = values.includes(option.value);
    redraw();
  }

  root.querySelectorAll("[data-filter]").forEach((control) => {
    const index = Number(control.dataset.filter);
    if (control.tagName === "SELECT") {
      control.addEventListener("change", () =>
        choose(index, [...control.selectedOptions].map((o) => o.value)));
      return;
    }
    const pick = () => {
      state[index][control.dataset.edge] = control.value;
      redraw();
    };
    control.addEventListener("input", pick);
    control.addEventListener("change", pick);
  });

  data.items.forEach((item, index) => {
    if (item.note) {
      const note = document.createElement("div");
      note.className = "aiser-card-note";
      note.textContent = item.note;
      cards[index].querySelector(".aiser-card-body").append(note);
    }
    if (!item.option) return;
    const box = cards[index].querySelector(".aiser-chart");
    window.aiserCharts.render(box, item.option);
    // A click on a category that a filter lists selects it (again: all values).
    const filter = data.filters.findIndex((f) => f.kind === "values" && f.member === item.live?.x);
    if (filter >= 0) {
      box.aiserChart.on("click", (params) => {
        const one = state[filter].selected;
        choose(filter, one.length === 1 && one[0] === params.name ? [] : [String(params.name)]);
      });
    }
  });
  root.dataset.ready = "true";
})();
