// Lets a test target configure before its first test file exists.
