// CoreDNS for the real node with only the plugins its Corefile uses (hack/node.sh writes it):
// the kubernetes plugin answers cluster.local, and no plugin that could ask a server beyond the
// machine (forward, etcd, cloud DNS) is even built in. It also builds in a fraction of the time
// of the full distribution, whose main package imports every plugin.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
