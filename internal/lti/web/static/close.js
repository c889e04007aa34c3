// Tells Moodle that LTI Dynamic Registration is over, so it closes the
// registration frame (LTI Dynamic Registration 1.0, section 3.6.4).
(window.opener || window.parent).postMessage({subject: "org.imsglobal.lti.close"}, "*");
