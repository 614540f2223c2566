// Runs first, in the oldest JavaScript any browser understands: if the browser lacks what the page needs (or the
// main script cannot start), it says so in the compatibility panel instead of leaving the page blank.
(function () {
  var supported = !!(window.fetch && window.Promise && window.AbortController && window.URLSearchParams &&
    window.JSON && document.querySelector && window.TextEncoder && window.crypto);
  window.CardDeskBrowserSupported = supported;
  function explain(id, title, text) {
    var panel = document.getElementById('compat');
    if (!panel) { return; }
    while (panel.firstChild) { panel.removeChild(panel.firstChild); }
    var box = document.createElement('div');
    box.className = 'problem';
    box.id = id;
    box.setAttribute('role', 'alert');
    var heading = document.createElement('h2');
    heading.appendChild(document.createTextNode(title));
    var body = document.createElement('p');
    body.appendChild(document.createTextNode(text));
    box.appendChild(heading);
    box.appendChild(body);
    panel.appendChild(box);
  }
  document.addEventListener('DOMContentLoaded', function () {
    if (!supported) {
      explain('problem-browser', 'This browser cannot be used for smartcard services',
        'It lacks features this page needs to talk to your smartcard. Use a current version of Microsoft Edge, ' +
        'Google Chrome or Mozilla Firefox. If you cannot, call your IT service desk.');
      return;
    }
    window.setTimeout(function () {
      if (!window.CardDeskStarted) {
        explain('problem-browser', 'This page could not start in your browser',
          'Its script did not run: the browser may be out of date, or a security setting or extension blocked it. ' +
          'Use a current version of Microsoft Edge, Google Chrome or Mozilla Firefox, or call your IT service desk.');
      }
    }, 5000);
  });
})();
