package routing_test

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// validJob is a Job template as the DESIGN's sample route has it.
const validJob = `{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"legacy","image":"registry.example/legacy:1","args":["--problem","$(PROBLEM_DISPLAY_ID)"]}]}}}}`

var receivedAt = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// problem is a rich problem, as a full Dynatrace payload gives it.
func problem() *routing.Problem {
	return &routing.Problem{
		Event:     "dynatrace-1a2b3c4d5e-open",
		Namespace: "shop",
		Target:    "dynatrace",
		Source:    "Dynatrace",
		ProblemID: "-6150203450926486413_1669823466223V2",
		DisplayID: "1234",
		State:     "OPEN",
		Title:     "CPU saturation",
		Severity:  "RESOURCE_CONTENTION",
		Impact:    "INFRASTRUCTURE",
		URL:       "https://abc12345.live.dynatrace.com/#problems/problemdetails;pid=-6150203450926486413_1669823466223V2",
		Tags:      []string{"env:prod", "[Kubernetes]app:shop", "team", "owner:ops:night"},
		ImpactedEntities: []routing.Entity{
			{ID: "HOST-1", Name: "web01", Type: "HOST"},
			{ID: "SERVICE-2", Name: "checkout", Type: "SERVICE"},
		},
		ManagementZones: []string{"Shop", "Prod"},
		ReceivedAt:      receivedAt,
	}
}

// jobAction is an action that runs validJob.
func jobAction(name string) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{
		Name: name,
		Job:  &problemhookv1alpha1.JobAction{Template: runtime.RawExtension{Raw: []byte(validJob)}},
	}
}

// twilioAction is the action sms.
func twilioAction(body string) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{
		Name:   "sms",
		Twilio: &problemhookv1alpha1.TwilioAction{From: "+18652699000", To: []string{"+4917000000"}, Body: body},
	}
}

// dingTalkAction is the action chat.
func dingTalkAction(title, text string) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{
		Name:     "chat",
		DingTalk: &problemhookv1alpha1.DingTalkAction{Title: title, Text: text},
	}
}

// httpAction is the action itsm.
func httpAction(body string) problemhookv1alpha1.Action {
	return problemhookv1alpha1.Action{
		Name: "itsm",
		HTTP: &problemhookv1alpha1.HTTPAction{URL: "https://itsm.example/api", Body: body},
	}
}
