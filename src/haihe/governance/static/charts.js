// 统计: trend, categories, statuses and areas of the governance statistics page.
(function () {
  "use strict";
  function bars(names, values, horizontal) {
    var cat = { type: "category", data: names, axisLabel: { interval: 0, rotate: horizontal ? 0 : 30 } };
    var val = { type: "value" };
    return {
      tooltip: { trigger: "axis" },
      grid: { left: horizontal ? 110 : 50, right: 20, top: 20, bottom: horizontal ? 30 : 80 },
      xAxis: horizontal ? val : cat, yAxis: horizontal ? cat : val,
      series: [{ type: "bar", data: values, barMaxWidth: 28, itemStyle: { color: "#2f6db5" } }]
    };
  }
  function draw() {
    var source = document.getElementById("gv-stats-data");
    if (!source || typeof echarts === "undefined") { return; }
    var s = JSON.parse(source.textContent);
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (holder) {
      var kind = holder.dataset.chart;
      var option;
      if (kind === "trend") {
        // a line through one or two days is a dot or a dash: bars read better until there are more
        var line = s.trend.length >= 3 ? "line" : "bar";
        option = {
          tooltip: { trigger: "axis" }, legend: { top: 0 },
          grid: { left: 50, right: 20, top: 30, bottom: 40 },
          xAxis: { type: "category", data: s.trend.map(function (d) { return d.day; }) },
          yAxis: { type: "value" },
          series: [
            { name: holder.dataset.reported, type: line, showSymbol: false, barMaxWidth: 28,
              areaStyle: line === "line" ? {} : undefined, data: s.trend.map(function (d) { return d.reported; }) },
            { name: holder.dataset.resolved, type: line, showSymbol: false, barMaxWidth: 28,
              data: s.trend.map(function (d) { return d.resolved; }) }
          ]
        };
      } else if (kind === "category") {
        var cats = s.by_category.slice().reverse();
        option = bars(cats.map(function (c) { return c.name; }), cats.map(function (c) { return c.reported; }), true);
      } else if (kind === "status") {
        var keys = Object.keys(s.by_status).filter(function (k) { return s.by_status[k] > 0; });
        option = { tooltip: { trigger: "item" }, legend: { bottom: 0, type: "scroll" },
                   series: [{ type: "pie", radius: ["35%", "65%"], center: ["50%", "45%"],
                              data: keys.map(function (k) { return { name: s.labels.status[k], value: s.by_status[k] }; }) }] };
      } else if (kind === "area") {
        var areas = s.by_area.slice(0, 20).reverse();
        option = bars(areas.map(function (a) { return a.name; }), areas.map(function (a) { return a.reported; }), true);
      }
      if (option) {
        var chart = echarts.init(holder);
        chart.setOption(option);
        charts.push(chart);
      }
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
