package azure

import (
	"fmt"
	"net/url"
	"strings"
)

// environment holds the endpoints of one Azure cloud.
type environment struct {
	// name is the canonical environment name.
	name string
	// authorityHost is the Entra ID (AAD) host with a trailing slash.
	authorityHost string
	// resourceManager is the ARM endpoint without a trailing slash.
	resourceManager string
	// resourceManagerAudience is the audience of tokens for ARM.
	resourceManagerAudience string
}

// environments are the Azure clouds accepted by the environment field,
// keyed by upper-cased name. AzureGermanCloud (closed in 2021) is kept
// because the tutorial-era plugin accepted it.
var environments = map[string]environment{
	"AZUREPUBLICCLOUD": {
		name:                    "AzurePublicCloud",
		authorityHost:           "https://login.microsoftonline.com/",
		resourceManager:         "https://management.azure.com",
		resourceManagerAudience: "https://management.core.windows.net/",
	},
	"AZURECHINACLOUD": {
		name:                    "AzureChinaCloud",
		authorityHost:           "https://login.chinacloudapi.cn/",
		resourceManager:         "https://management.chinacloudapi.cn",
		resourceManagerAudience: "https://management.core.chinacloudapi.cn/",
	},
	"AZUREUSGOVERNMENTCLOUD": {
		name:                    "AzureUSGovernmentCloud",
		authorityHost:           "https://login.microsoftonline.us/",
		resourceManager:         "https://management.usgovcloudapi.net",
		resourceManagerAudience: "https://management.core.usgovcloudapi.net/",
	},
	"AZUREGERMANCLOUD": {
		name:                    "AzureGermanCloud",
		authorityHost:           "https://login.microsoftonline.de/",
		resourceManager:         "https://management.microsoftazure.de",
		resourceManagerAudience: "https://management.core.cloudapi.de/",
	},
}

// lookupEnvironment finds an environment by name, case-insensitively; ""
// is AzurePublicCloud. The error text is the current plugin's.
func lookupEnvironment(name string) (environment, error) {
	if name == "" {
		return environments["AZUREPUBLICCLOUD"], nil
	}
	env, ok := environments[strings.ToUpper(name)]
	if !ok {
		return environment{}, fmt.Errorf("no cloud configuration matching the name %q", name)
	}
	return env, nil
}

// normalizeEndpoint checks that s is an absolute http(s) URL without query
// or fragment and returns it with exactly one trailing slash (slash=true)
// or none.
func normalizeEndpoint(field, s string, slash bool) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%s must be an absolute http(s) URL without query, got %q", field, s)
	}
	s = strings.TrimRight(s, "/")
	if slash {
		s += "/"
	}
	return s, nil
}
