// The ChartWidget's view (anywidget): draws the option, follows the theme and the
// container's size, and sends clicks back to Python as `selection`.
import { clickSelection, draw, fit, followTheme, imageDataUrl } from "./render.js";

function render({ model, el }) {
  const box = document.createElement("div");
  box.className = "aiser-chart";
  box.style.width = "100%";
  box.style.height = `${model.get("height")}px`;
  const caption = document.createElement("div");
  caption.className = "aiser-caption";
  caption.style.cssText = "opacity:.7;font-size:.85em";
  caption.textContent = model.get("caption");
  el.append(box, caption);
  model.on("change:caption", () => {
    caption.textContent = model.get("caption");
  });
  const ref = {};
  const redraw = () => {
    ref.current?.dispose();
    const chart = draw(box, model.get("option"), ref);
    chart.on("click", (params) => {
      model.set("selection", { ...clickSelection(params), at: Date.now() });
      model.save_changes();
    });
  };
  redraw();
  model.on("change:option", redraw);
  model.on("change:height", () => {
    box.style.height = `${model.get("height")}px`;
    if (ref.current) fit(ref.current);
  });
  model.on("msg:custom", (msg) => {
    if (msg.type === "export") {
      const data = imageDataUrl(ref.current, model.get("option"), msg.format);
      model.send({ type: "image", format: msg.format, data, token: msg.token });
    }
  });
  const sizes = new ResizeObserver(() => ref.current && fit(ref.current));
  sizes.observe(box);
  const stopTheme = followTheme(box, ref);
  return () => {
    sizes.disconnect();
    stopTheme();
    ref.current?.dispose();
  };
}

export default { render };
