// Resubmits a form held during re-authentication (only its id travels; the data stays server-side).
(function () {
  "use strict";
  var form = document.getElementById("reauth-continue");
  if (form) {
    form.submit();
  }
})();
