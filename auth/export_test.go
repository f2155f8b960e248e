package auth

// For the external tests (package auth_test), which may import
// internal/testutil: the ACL that TestMosquittoACL's table is about.
const MosquittoTable = mosquittoTable
