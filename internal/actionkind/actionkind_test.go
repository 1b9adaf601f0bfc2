package actionkind_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/google/cel-go/cel"
	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/actionkind"
)

// everyReference is a route whose actions set every Secret reference the
// kinds have, and actions that leave the optional ones out.
func everyReference() *problemhookv1alpha1.IntegrationRouteSpec {
	return &problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{
		{Name: "run", Job: &problemhookv1alpha1.JobAction{}},
		{Name: "sms", Twilio: &problemhookv1alpha1.TwilioAction{CredentialsSecretRef: problemhookv1alpha1.LocalObjectReference{Name: "twilio"}, To: []string{"+4917000000", "+4917000001"}, Body: "{{.Title}}"}},
		{Name: "chat", DingTalk: &problemhookv1alpha1.DingTalkAction{
			URLSecretRef:  problemhookv1alpha1.SecretKeyReference{Name: "robot"},
			SignSecretRef: &problemhookv1alpha1.SecretKeyReference{Name: "robot-sign", Key: "sign"},
		}},
		{Name: "plain-chat", DingTalk: &problemhookv1alpha1.DingTalkAction{URLSecretRef: problemhookv1alpha1.SecretKeyReference{Name: "robot2", Key: "webhook"}}},
		{Name: "itsm", HTTP: &problemhookv1alpha1.HTTPAction{
			URLSecretRef:     &problemhookv1alpha1.SecretKeyReference{Name: "itsm-url"},
			HeadersSecretRef: &problemhookv1alpha1.LocalObjectReference{Name: "itsm-headers"},
			SecretRef:        &problemhookv1alpha1.LocalObjectReference{Name: "itsm-body"},
			Body:             `{"key": {{secret "key" | json}}}`,
		}},
		{Name: "plain-hook", HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://hooks.example/x"}},
	}}
}

func TestKinds(t *testing.T) {
	spec := everyReference()
	no := false
	spec.Actions[0].Job.StopOnResolve = &no
	for _, tc := range []struct {
		action         int
		typ            string
		message, stops bool
		recipients     []string
		refs           []actionkind.SecretRef
		templates      []string
	}{
		{action: 0, typ: "Job", stops: false},
		{action: 1, typ: "Twilio", message: true, stops: true, recipients: []string{"+4917000000", "+4917000001"},
			refs:      []actionkind.SecretRef{{Field: "twilio.credentialsSecretRef", Name: "twilio", Keys: []string{"accountSID", "authToken"}}},
			templates: []string{"twilio.body"}},
		{action: 2, typ: "DingTalk", message: true, stops: true,
			refs: []actionkind.SecretRef{
				{Field: "dingtalk.urlSecretRef", Name: "robot", Keys: []string{"url"}},
				{Field: "dingtalk.signSecretRef", Name: "robot-sign", Keys: []string{"sign"}},
			},
			templates: []string{"dingtalk.title", "dingtalk.text"}},
		{action: 3, typ: "DingTalk", message: true, stops: true,
			refs:      []actionkind.SecretRef{{Field: "dingtalk.urlSecretRef", Name: "robot2", Keys: []string{"webhook"}}},
			templates: []string{"dingtalk.title", "dingtalk.text"}},
		{action: 4, typ: "HTTP", message: true, stops: true,
			refs: []actionkind.SecretRef{
				{Field: "http.urlSecretRef", Name: "itsm-url", Keys: []string{"url"}},
				{Field: "http.headersSecretRef", Name: "itsm-headers"},
				{Field: "http.secretRef", Name: "itsm-body"},
			},
			templates: []string{"http.body", "http.path"}},
		{action: 5, typ: "HTTP", message: true, stops: true, templates: []string{"http.body", "http.path"}},
	} {
		a := &spec.Actions[tc.action]
		t.Run(a.Name, func(t *testing.T) {
			g := NewWithT(t)
			k := actionkind.Of(a)
			g.Expect(k.Type).To(Equal(tc.typ))
			g.Expect(actionkind.ByType(tc.typ)).To(BeIdenticalTo(k))
			g.Expect(k.Message).To(Equal(tc.message))
			g.Expect(k.StopsOnResolve(a)).To(Equal(tc.stops))
			g.Expect(k.Recipients(a)).To(Equal(tc.recipients))
			refs := k.SecretRefs(a)
			for i := range refs {
				refs[i].Validate = nil // functions do not compare
			}
			g.Expect(refs).To(Equal(tc.refs))
			var fields []string
			for _, tpl := range k.Templates(a) {
				fields = append(fields, tpl.Field)
				g.Expect(k.HasTemplate(tpl.Field)).To(BeTrue())
			}
			g.Expect(fields).To(Equal(tc.templates))
		})
	}
}

func TestValidation(t *testing.T) {
	g := NewWithT(t)
	spec := everyReference()
	twilio := actionkind.Of(&spec.Actions[1]).SecretRefs(&spec.Actions[1])[0]
	g.Expect(twilio.Validate(map[string][]byte{"accountSID": []byte("AC" + "0123456789abcdef0123456789abcdef"), "authToken": []byte("x")})).To(Succeed())
	g.Expect(twilio.Validate(map[string][]byte{"accountSID": []byte("not-a-sid"), "authToken": []byte("x")})).To(MatchError(HavePrefix("key accountSID ")))
	headers := actionkind.Of(&spec.Actions[4]).SecretRefs(&spec.Actions[4])[1]
	g.Expect(headers.Validate(map[string][]byte{"Authorization": []byte("Bearer x")})).To(Succeed())
	g.Expect(headers.Validate(map[string][]byte{"Bad Header": []byte("x")})).NotTo(Succeed())
	body := actionkind.Of(&spec.Actions[4]).Templates(&spec.Actions[4])[0]
	g.Expect(body.Secrets).NotTo(BeNil())
	g.Expect(body.Secrets.Name).To(Equal("itsm-body"))
	g.Expect(actionkind.Of(&spec.Actions[5]).Templates(&spec.Actions[5])[0].Secrets).To(BeNil())
}

// The admission policy's CEL and the reconcilers' Go name the same
// Secrets: the CEL the registry writes, evaluated by cel-go over the route
// as the API server sees it, lists what SecretNames lists.
func TestCELNamesTheSameSecretsAsGo(t *testing.T) {
	g := NewWithT(t)
	env, err := cel.NewEnv(cel.Variable("object", cel.DynType))
	g.Expect(err).NotTo(HaveOccurred())
	ast, iss := env.Compile(actionkind.CELSecretNames())
	g.Expect(iss.Err()).NotTo(HaveOccurred())
	prg, err := env.Program(ast)
	g.Expect(err).NotTo(HaveOccurred())
	for name, spec := range map[string]*problemhookv1alpha1.IntegrationRouteSpec{
		"every reference": everyReference(),
		"a Job only":      {Actions: everyReference().Actions[:1]},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			b, err := json.Marshal(map[string]any{"spec": spec})
			g.Expect(err).NotTo(HaveOccurred())
			var object map[string]any
			g.Expect(json.Unmarshal(b, &object)).To(Succeed())
			out, _, err := prg.Eval(map[string]any{"object": object})
			g.Expect(err).NotTo(HaveOccurred())
			list, err := out.ConvertToNative(reflectStrings)
			g.Expect(err).NotTo(HaveOccurred())
			fromCEL := slices.Sorted(slices.Values(list.([]string)))
			fromGo := slices.Sorted(slices.Values(actionkind.SecretNames(spec)))
			g.Expect(fromCEL).To(Equal(fromGo))
		})
	}
	// Every reference of every kind is in the route above, so the
	// comparison covers them all.
	g.Expect(actionkind.SecretNames(everyReference())).To(HaveLen(7))
}

var reflectStrings = reflect.TypeFor[[]string]()
