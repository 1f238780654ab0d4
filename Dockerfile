# Airflow 3.3 with the project's Python dependencies, Java 17 and the Spark runtime the stream
# task submits with (full pyspark 3.5 in its own virtualenv, apart from Airflow's pyspark-client).

# --- the Spark job's jars, resolved by Maven from spark/pom.xml -----------------------------------
FROM maven:3.9-eclipse-temurin-17 AS spark-jars
WORKDIR /build
COPY spark/pom.xml spark/pom.xml
RUN mvn -q -f spark/pom.xml dependency:copy-dependencies -DoutputDirectory=/jars

FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
COPY spark/requirements.txt /tmp/spark-requirements.txt
RUN python -m venv /opt/spark-venv \
 && /opt/spark-venv/bin/pip install --no-cache-dir -r /tmp/spark-requirements.txt
COPY --from=spark-jars /jars /opt/spark-jars
# Airflow's admin password file (written by airflow-init into a volume mounted here).
RUN mkdir -p /opt/userstream/auth && chown airflow:root /opt/userstream/auth \
 && chmod 0700 /opt/userstream/auth
USER airflow
COPY requirements/runtime.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock
ENV USERSTREAM_SPARK_SUBMIT=/opt/spark-venv/bin/spark-submit \
    USERSTREAM_SPARK_PYTHON=/opt/spark-venv/bin/python \
    PYTHONPATH=/opt/userstream
WORKDIR /opt/userstream
COPY --chown=airflow:root include include
COPY --chown=airflow:root spark spark
COPY --chown=airflow:root airflow_home airflow_home
COPY --chown=airflow:root plugins plugins
# The pipeline page the plugin serves, and `make status`'s probes it shares.
COPY --chown=airflow:root ops ops
# Every task and DAG parse is a fresh Python process: give it the project's bytecode up front.
RUN python -m compileall -q include airflow_home/dags plugins ops spark
