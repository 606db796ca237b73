package config_test

import (
	"errors"
	"fmt"

	"github.com/tributary-dev/tributary/config"
)

func ExampleParse() {
	cfg, err := config.Parse("tributary.yaml", []byte(`
node: {id: eu-1, region: eu}
kafka:
  eu-west: {region: eu, bootstrap: 10.0.1.10:9092}
  central: {region: cloud, bootstrap: 10.2.1.10:9092}
target: central
pipelines:
  - name: eu-payments
    source: {kafka: eu-west}
    topics: {include: ['payments\..*']}
    tasks: 4
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := cfg.Pipeline("eu-payments")
	fmt.Println(p.Selects("payments.card"), p.TargetTopic("payments.card"))
	fmt.Println(p.Tasks, p.Format, p.CommitInterval, p.IsExactlyOnce())
	// Output:
	// true eu-west.payments.card
	// 4 bytes 100ms true
}

func ExampleParse_errors() {
	_, err := config.Parse("tributary.yaml", []byte(`
node: {id: eu-1, region: eu}
kafka:
  central: {region: cloud, bootstrap: 10.2.1.10:9092}
target: central
pipelines:
  - name: eu-payments
    source: {kafka: eu-west}
    topics: {include: ['payments.(']}
    taks: 4
`))
	fmt.Println(err)

	var list *config.ErrorList
	if errors.As(err, &list) {
		fmt.Println(len(list.Errors), "errors, the first at line", list.Errors[0].Line)
	}
	// Output:
	// tributary.yaml:8:14: pipelines[0].source.kafka: "eu-west" is not a kafka cluster (known: central)
	// tributary.yaml:9:24: pipelines[0].topics.include[0]: invalid regex "payments.(": missing closing ): `payments.(`
	// tributary.yaml:10:5: pipelines[0].taks: unknown key (did you mean "tasks"?)
	// 3 errors, the first at line 8
}

func ExampleLoad() {
	cfg, err := config.Load("testdata/minimal.good.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Node.ID, cfg.Node.DataDir, cfg.Cluster.ElectionTimeout)
	fmt.Println(cfg.Pipelines[0].TargetTopic("orders.eu"))
	// Output:
	// solo data 1s
	// central.orders.eu
}
