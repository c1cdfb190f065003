package cloud

import (
	"net/http"
	"slices"
	"strings"
)

// Supported api-versions per resource type (as the real providers list
// them, trimmed).
var (
	resourcesVersions    = []string{"2014-04-01", "2015-01-01", "2015-11-01", "2016-02-01", "2016-06-01", "2016-07-01", "2016-09-01", "2017-05-10", "2018-02-01", "2018-05-01", "2019-05-01", "2019-05-10", "2019-07-01", "2019-08-01", "2019-10-01", "2020-06-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01", "2025-04-01"}
	subscriptionVersions = []string{"2014-04-01", "2015-01-01", "2016-06-01", "2018-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01"}
	computeVersions      = []string{"2015-06-15", "2016-03-30", "2016-04-30-preview", "2017-03-30", "2017-12-01", "2018-04-01", "2018-06-01", "2018-10-01", "2019-03-01", "2019-07-01", "2019-12-01", "2020-06-01", "2020-12-01", "2021-03-01", "2021-04-01", "2021-07-01", "2021-11-01", "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01"}
	msiVersions          = []string{"2015-08-31-preview", "2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31", "2023-07-31-preview", "2024-11-30", "2025-01-31-preview"}
	ficVersions          = []string{"2022-01-31-preview", "2023-01-31", "2023-07-31-preview", "2024-11-30", "2025-01-31-preview"}
	authzVersions        = []string{"2014-07-01-preview", "2014-10-01-preview", "2015-06-01", "2015-07-01", "2016-07-01", "2017-05-01", "2017-10-01-preview", "2018-01-01-preview", "2018-07-01", "2018-09-01-preview", "2018-12-01-preview", "2019-04-01-preview", "2020-03-01-preview", "2020-04-01-preview", "2020-08-01-preview", "2020-10-01-preview", "2021-04-01-preview", "2022-01-01-preview", "2022-04-01"}
	locations            = []string{"East US", "East US 2", "West US", "West US 2", "Central US", "North Europe", "West Europe", "Southeast Asia", "Japan East", "UK South", "Australia East"}
)

func checkVersion(v string, supported []string, rpType, location string, resourcesStyle bool) error {
	if v == "" {
		return armErr(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	}
	if slices.Contains(supported, v) {
		return nil
	}
	desc := slices.Clone(supported)
	slices.Reverse(desc)
	if resourcesStyle {
		return armErr(http.StatusBadRequest, "InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(desc, ","))
	}
	if location == "" {
		location = "global"
	}
	locs := make([]string, len(locations))
	for i, l := range locations {
		locs[i] = strings.ToLower(l)
	}
	return armErr(http.StatusBadRequest, "NoRegisteredProviderFound", "No registered resource provider found for location '%s' and API version '%s' for type '%s'. The supported api-versions are '%s'. The supported locations are '%s'.", location, v, rpType, strings.Join(supported, ", "), strings.Join(locs, ", "))
}
