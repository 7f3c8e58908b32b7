// The SchemaBrowser's view: connections → tables → columns, and the semantic model's
// cubes → measures/dimensions. Choosing a table asks Python for a preview and a snippet.
function node(tag, text, className) {
  const el = document.createElement(tag);
  if (text) el.textContent = text;
  if (className) el.className = className;
  return el;
}

function branch(item, model) {
  if (!item.children) {
    const leaf = node("div", item.label, `leaf ${item.kind}`);
    if (item.detail) leaf.appendChild(node("span", item.detail, "detail"));
    return leaf;
  }
  const details = node("details", "", item.kind);
  details.open = Boolean(item.open);
  const summary = node("summary", item.label);
  if (item.detail) summary.appendChild(node("span", item.detail, "detail"));
  if (item.key) {
    summary.addEventListener("click", () => {
      model.set("selected", item.key);
      model.save_changes();
    });
  }
  details.appendChild(summary);
  item.children.forEach((child) => details.appendChild(branch(child, model)));
  return details;
}

function render({ model, el }) {
  const root = node("div", "", "aiser-schema");
  const tree = node("div", "", "tree");
  const side = node("div", "", "side");
  root.append(tree, side);
  el.appendChild(root);

  const drawTree = () => tree.replaceChildren(...model.get("tree").map((item) => branch(item, model)));
  const drawSide = () => {
    side.replaceChildren();
    const snippet = model.get("snippet");
    if (!snippet) {
      side.appendChild(node("div", "Choose a table to preview it.", "hint"));
      return;
    }
    const copy = node("button", "Copy");
    copy.addEventListener("click", () => navigator.clipboard?.writeText(snippet));
    side.append(node("pre", snippet, "snippet"), copy);
    const { columns = [], rows = [], count = 0 } = model.get("preview") ?? {};
    side.appendChild(node("div", `${count.toLocaleString()} rows`, "hint"));
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    columns.forEach((name) => head.appendChild(node("th", name)));
    const body = table.createTBody();
    rows.forEach((row) => {
      const tr = body.insertRow();
      row.forEach((value) => tr.appendChild(node("td", value === null ? "∅" : String(value))));
    });
    side.appendChild(table);
  };
  drawTree();
  drawSide();
  model.on("change:tree", drawTree);
  model.on("change:preview", drawSide);
  model.on("change:snippet", drawSide);
}

export default { render };
