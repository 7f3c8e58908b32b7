// For pages with no kernel (Chart.to_html, nbconvert output): window.aiserCharts.render.
import { draw, followTheme } from "./render.js";

function render(box, option) {
  const ref = {};
  draw(box, option, ref);
  new ResizeObserver(() => ref.current?.resize()).observe(box);
  followTheme(box, ref);
}

window.aiserCharts = { render };
