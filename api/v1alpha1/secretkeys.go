package v1alpha1

// The keys users put in the Secrets the API references, in one place: the
// receiver, the reconcilers and the command line read them from here, and
// each field's documentation (docs/reference.md) names them.
const (
	// BasicUsernameKey is the key of the username in spec.auth.basic's Secret.
	BasicUsernameKey = "username"
	// BasicPasswordKey is the key of the password in spec.auth.basic's Secret.
	BasicPasswordKey = "password"
	// DefaultBearerKey is the key of the token in spec.auth.bearer's Secret
	// when its secretRef names none.
	DefaultBearerKey = "token"

	// DefaultDynatraceTokenKey is the key of the API token in
	// spec.dynatrace.tokenSecretRef's Secret when it names none.
	DefaultDynatraceTokenKey = "token"
	// OAuthClientIDKey is the key of the client ID in
	// spec.dynatrace.oauth.clientSecretRef's Secret.
	OAuthClientIDKey = "clientID"
	// OAuthClientSecretKey is the key of the client secret in
	// spec.dynatrace.oauth.clientSecretRef's Secret.
	OAuthClientSecretKey = "clientSecret"

	// TwilioAccountSIDKey is the key of the account SID in a Twilio
	// action's credentialsSecretRef Secret.
	TwilioAccountSIDKey = "accountSID"
	// TwilioAuthTokenKey is the key of the auth token in a Twilio action's
	// credentialsSecretRef Secret.
	TwilioAuthTokenKey = "authToken"
	// DefaultDingTalkURLKey is the key of the robot's webhook URL in a
	// DingTalk action's urlSecretRef Secret when it names none.
	DefaultDingTalkURLKey = "url"
	// DefaultDingTalkSignKey is the key of the robot's signing secret in a
	// DingTalk action's signSecretRef Secret when it names none.
	DefaultDingTalkSignKey = "secret"
	// DefaultHTTPURLKey is the key of the URL in an HTTP action's
	// urlSecretRef Secret when it names none.
	DefaultHTTPURLKey = "url"
)
