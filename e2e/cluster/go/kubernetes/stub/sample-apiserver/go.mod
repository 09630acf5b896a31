// Empty stand-in: k8s.io/kubernetes requires k8s.io/sample-apiserver (used
// only by its own tests), and the module proxy does not serve v0.34.10 of it.
module k8s.io/sample-apiserver

go 1.24.0
