// Draws a dataset's chart on /portal/dataset/<name> from the JSON the page embeds.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("portal-chart");
    var source = document.getElementById("portal-chart-data");
    if (!holder || !source || typeof echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var narrow = holder.clientWidth < 520;
    // one row per bar: a chart of four districts is short, one of twenty is tall
    holder.style.height = Math.max(160, 48 + 30 * data.labels.length) + "px";
    var chart = echarts.init(holder);
    chart.setOption({
      color: ["#1f5fbf"],
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: narrow ? 8 : 16, right: 24, top: 16, bottom: 8, containLabel: true },
      // horizontal bars: long Chinese labels stay readable on a phone
      xAxis: { type: "value" },
      yAxis: { type: "category", data: data.labels.slice().reverse(),
               axisLabel: { width: narrow ? 90 : 180, overflow: "truncate" } },
      series: [{ name: holder.dataset.series, type: "bar", barMaxWidth: 22,
                 data: data.values.slice().reverse() }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
