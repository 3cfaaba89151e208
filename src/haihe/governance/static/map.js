// 地图: the areas of the grid map from their GeoJSON (echarts.registerMap, no map tiles from the
// internet) and the events per grid cell on them, sized and coloured by count.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("gv-map");
    var source = document.getElementById("gv-map-data");
    if (!holder || !source || typeof echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    echarts.registerMap("haihe-grid", data.areas);
    var points = data.points.map(function (p) { return { name: p.cell, value: [p.lng, p.lat, p.count] }; });
    var max = points.reduce(function (m, p) { return Math.max(m, p.value[2]); }, 1);
    var narrow = holder.clientWidth < 600;
    var chart = echarts.init(holder);
    chart.setOption({
      tooltip: { trigger: "item", formatter: function (p) {
        return p.seriesType === "scatter" ? p.name + "<br>" + holder.dataset.series + ": " + p.value[2] : p.name;
      } },
      // on a phone the legend lies under the map instead of over its corner
      visualMap: Object.assign({ min: 0, max: max, calculable: true, seriesIndex: 0,
                                 inRange: { color: ["#9ecae1", "#fdae61", "#d7191c"] } },
                               narrow ? { orient: "horizontal", left: "center", bottom: 0, itemHeight: 160 }
                                      : { right: 8, bottom: 8 }),
      geo: { map: "haihe-grid", roam: true, layoutCenter: ["50%", narrow ? "44%" : "50%"],
             layoutSize: narrow ? "88%" : "95%",
             itemStyle: { areaColor: "#eef3f8", borderColor: "#8aa2bd" },
             emphasis: { itemStyle: { areaColor: "#dbe7f3" }, label: { show: true } } },
      series: [{ name: holder.dataset.series, type: "scatter", coordinateSystem: "geo", data: points,
                 symbolSize: function (v) { return 4 + 16 * Math.sqrt(v[2] / max); } }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
