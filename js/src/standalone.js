// For pages with no kernel (Chart.to_html, nbconvert output): window.aiserCharts.render.
import { draw, fit, followTheme, relayout } from "./render.js";

function render(box, option) {
  const ref = {};
  draw(box, option, ref);
  new ResizeObserver(() => ref.current && fit(ref.current)).observe(box);
  followTheme(box, ref);
}

window.aiserCharts = { render, relayout };
