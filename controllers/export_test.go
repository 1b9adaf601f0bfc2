package controllers

// JobName is jobName, for the tests of package controllers_test that must
// know a Job's name before it exists.
var JobName = jobName
