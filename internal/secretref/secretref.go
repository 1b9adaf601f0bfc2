// Package secretref reads the Secret values that problemhook resources
// reference, and says precisely what is wrong when a reference cannot be
// resolved.
package secretref

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// Error is a reference the user must fix: the Secret does not exist, or
// lacks a key. Reason is the Ready condition reason to report.
type Error struct {
	// Field is the path of the reference in the spec, e.g. spec.auth.basic.secretRef.
	Field string
	// Reason is ReasonSecretNotFound or ReasonSecretKeyMissing.
	Reason string
	// Secret is the Secret's namespace/name.
	Secret types.NamespacedName
	// Key is the missing key, for ReasonSecretKeyMissing.
	Key string
}

func (e *Error) Error() string {
	if e.Reason == problemhookv1alpha1.ReasonSecretNotFound {
		return fmt.Sprintf("%s: Secret %s not found", e.Field, e.Secret)
	}
	return fmt.Sprintf("%s: Secret %s has no key %q, or its value is empty", e.Field, e.Secret, e.Key)
}

// Values reads the given keys of the Secret name in namespace. Every key
// must be present with a non-empty value. field names the reference in
// errors. A Secret or key that is missing is an *Error; any other failure
// to read the Secret is returned wrapped, for the caller to retry.
func Values(ctx context.Context, r client.Reader, namespace, name, field string, keys ...string) (map[string][]byte, error) {
	data, err := Data(ctx, r, namespace, name, field)
	if err != nil {
		return nil, err
	}
	values := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v := data[k]
		if len(v) == 0 {
			return nil, &Error{Field: field, Reason: problemhookv1alpha1.ReasonSecretKeyMissing, Secret: types.NamespacedName{Namespace: namespace, Name: name}, Key: k}
		}
		values[k] = v
	}
	return values, nil
}

// Data reads every key of the Secret name in namespace, e.g. one whose
// keys are HTTP headers. field names the reference in errors, as in Values.
func Data(ctx context.Context, r client.Reader, namespace, name, field string) (map[string][]byte, error) {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var secret corev1.Secret
	if err := r.Get(ctx, key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &Error{Field: field, Reason: problemhookv1alpha1.ReasonSecretNotFound, Secret: key}
		}
		return nil, fmt.Errorf("reading Secret %s for %s: %w", key, field, err)
	}
	return secret.Data, nil
}

// Value reads the key ref points to, or defaultKey when ref names none.
func Value(ctx context.Context, r client.Reader, namespace string, ref problemhookv1alpha1.SecretKeyReference, defaultKey, field string) ([]byte, error) {
	key := KeyOrDefault(ref, defaultKey)
	values, err := Values(ctx, r, namespace, ref.Name, field, key)
	if err != nil {
		return nil, err
	}
	return values[key], nil
}

// KeyOrDefault returns the key ref names, or defaultKey when it names none.
func KeyOrDefault(ref problemhookv1alpha1.SecretKeyReference, defaultKey string) string {
	if ref.Key == "" {
		return defaultKey
	}
	return ref.Key
}
