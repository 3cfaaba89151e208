// 上报事件: fills longitude and latitude from the phone's position when asked.
(function () {
  "use strict";
  function init() {
    var button = document.querySelector("[data-locate]");
    var status = document.querySelector("[data-locate-status]");
    if (!button || !status) { return; }
    if (!("geolocation" in navigator)) { button.hidden = true; return; }
    button.addEventListener("click", function () {
      status.textContent = button.dataset.locating;
      navigator.geolocation.getCurrentPosition(function (pos) {
        document.getElementById("f-lng").value = pos.coords.longitude.toFixed(6);
        document.getElementById("f-lat").value = pos.coords.latitude.toFixed(6);
        status.textContent = "";
      }, function () {
        status.textContent = button.dataset.failed;
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
