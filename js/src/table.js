// The ResultTable's view: one page of rows at a time; sorting and paging ask Python,
// which answers with the next page, so a big result never comes to the browser whole.
function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function render({ model, el }) {
  const root = cell("div", "", "aiser-table");
  el.appendChild(root);

  const draw = () => {
    root.replaceChildren();
    const columns = model.get("columns");
    const [sortColumn, sortOrder] = model.get("sort") ?? [null, null];
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    columns.forEach(({ name, type }) => {
      const arrow = name === sortColumn ? (sortOrder === "desc" ? " ▼" : " ▲") : "";
      const th = cell("th", name + arrow);
      th.title = `${type}: click to sort`;
      th.addEventListener("click", () => {
        const order = name === sortColumn && sortOrder === "asc" ? "desc" : "asc";
        model.set("sort", [name, order]);
        model.set("page", 0);
        model.save_changes();
      });
      head.appendChild(th);
    });
    const body = table.createTBody();
    for (const row of model.get("rows")) {
      const tr = body.insertRow();
      row.forEach((value, i) => {
        const numeric = typeof value === "number";
        tr.appendChild(cell("td", value === null ? "∅" : String(value), numeric ? "num" : value === null ? "null" : ""));
      });
    }
    root.appendChild(table);

    const total = model.get("total");
    const size = model.get("page_size");
    const page = model.get("page");
    const pages = Math.max(1, Math.ceil(total / size));
    const pager = cell("div", "", "pager");
    const go = (target) => () => {
      model.set("page", Math.min(Math.max(target, 0), pages - 1));
      model.save_changes();
    };
    for (const [label, target, off] of [
      ["«", 0, page === 0],
      ["‹", page - 1, page === 0],
      ["›", page + 1, page >= pages - 1],
      ["»", pages - 1, page >= pages - 1],
    ]) {
      const button = cell("button", label);
      button.disabled = off;
      button.addEventListener("click", go(target));
      pager.appendChild(button);
    }
    const first = total === 0 ? 0 : page * size + 1;
    const last = Math.min(total, (page + 1) * size);
    pager.appendChild(cell("span", `rows ${first.toLocaleString()}–${last.toLocaleString()} of ${total.toLocaleString()}`, "range"));
    if (model.get("caption")) pager.appendChild(cell("span", model.get("caption"), "caption"));
    root.appendChild(pager);
  };
  draw();
  model.on("change:rows", draw);
  model.on("change:sort", draw);
  model.on("change:total", draw);
}

export default { render };
