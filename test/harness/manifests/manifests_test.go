package manifests_test

import (
	"testing"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/test/harness/manifests"
)

func TestDecode(t *testing.T) {
	g := NewWithT(t)
	objs, err := manifests.Decode([]byte(`
# a comment-only document is skipped
---
apiVersion: v1
kind: Namespace
metadata: {name: a}
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, namespace: a}
data: {k: v}
`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(objs).To(HaveLen(2))
	g.Expect(objs[0].GetKind()).To(Equal("Namespace"))
	g.Expect(objs[1].GetNamespace()).To(Equal("a"))

	_, err = manifests.Decode([]byte("metadata: {name: c}\n"))
	g.Expect(err).To(MatchError(`object "c" has no apiVersion or kind`))

	_, err = manifests.Decode([]byte("kind: [unclosed\n"))
	g.Expect(err).To(HaveOccurred())
}
