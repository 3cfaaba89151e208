// Draws the sharing-uses chart of /audit/statistics from the JSON the page embeds.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("audit-chart");
    var source = document.getElementById("audit-chart-data");
    if (!holder || !source || typeof echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    // a line through one or two days is a dot or a dash: bars read better until there are more
    if (data.labels.length < 3) { data.kind = "bar"; }
    var chart = echarts.init(holder);
    chart.setOption({
      tooltip: { trigger: "axis" },
      grid: { left: 60, right: 20, top: 20, bottom: 80 },
      xAxis: { type: "category", data: data.labels, axisLabel: { rotate: data.kind === "bar" ? 30 : 0 } },
      yAxis: { type: "value" },
      series: [{ name: holder.dataset.series || data.series, type: data.kind, data: data.values,
                 smooth: data.kind === "line", areaStyle: data.kind === "line" ? {} : undefined }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
