// The map of a page: its footprints or extents (a GeoJSON FeatureCollection the server wrote
// into #map-data), over the tiles the operator set (data-tiles; none: no basemap).
// Catalog text never goes in as HTML: tooltips are given DOM text nodes. Longitudes may exceed
// 180: what crosses the antimeridian comes shifted by 360 to draw in one piece (server/api/mapdata.py).
(function () {
  "use strict";
  var el = document.getElementById("map");
  var source = document.getElementById("map-data");
  if (!el || !source || !window.L) { return; }
  var data = JSON.parse(source.textContent);
  var map = L.map(el, { worldCopyJump: true, scrollWheelZoom: false });
  var tiles = el.getAttribute("data-tiles");
  if (tiles) {
    L.tileLayer(tiles, { maxZoom: 19, attribution: el.getAttribute("data-attribution") || "" }).addTo(map);
  }
  var style = { color: "#1f5fa8", weight: 2, fillOpacity: 0.12 };
  var layer = L.geoJSON(data, {
    style: function () { return style; },
    pointToLayer: function (feature, latlng) { return L.circleMarker(latlng, { radius: 6 }); },
    onEachFeature: function (feature, featureLayer) {
      var props = feature.properties || {};
      if (props.title) {
        var label = document.createElement("span");
        label.dir = "auto";  // the title's own direction, isolated from the tooltip's (pages.py: bidi controls)
        label.textContent = props.title;
        featureLayer.bindTooltip(label, { sticky: true });
      }
      if (props.href) {
        featureLayer.on("click", function () { window.location.href = props.href; });
        featureLayer.on("mouseover", function () { featureLayer.setStyle({ weight: 4 }); });
        featureLayer.on("mouseout", function () { featureLayer.setStyle({ weight: 2 }); });
      }
    }
  }).addTo(map);
  var bounds = layer.getBounds();
  if (bounds.isValid()) {
    map.fitBounds(bounds, { maxZoom: 12, padding: [10, 10] });
  } else {
    map.setView([20, 0], 1);
  }
  el.setAttribute("data-footprints", String(data.features.length));
  el.setAttribute("data-view", map.getBounds().toBBoxString());  // west,south,east,north shown (for tests)
})();
